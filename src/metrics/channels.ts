// The named diagnostics channels (node:diagnostics_channel) Ferry's modules publish their events on and its metrics
// observe: the module that owns an event publishes it whether or not anyone listens, so nothing wires a metric in.
import { channel, type Channel } from 'node:diagnostics_channel';

/** A demand read of a lazy layer: published on `readStart` as it begins, the same object on `readEnd` once settled. */
export interface LayerReadMessage {
  readonly layer: string;
  readonly lengthBytes: number;
  /** Set before `readEnd`: undefined on success. */
  error?: unknown;
  /** Set before `readEnd`: bytes returned (0 on error). */
  bytes?: number;
}

/** A demand read needed a chunk; `local` when the cache held it before the fetch. */
export interface DemandChunkMessage {
  readonly layer: string;
  readonly local: boolean;
}

/** One finished snapshots API call (method names are a fixed set). */
export interface GrpcCallMessage {
  readonly method: string;
  readonly code: string;
  readonly seconds: number;
}

export interface Topic<T> {
  readonly name: string;
  /** Someone listens: publishers skip work (timers, lookups) that only a listener needs. */
  readonly active: boolean;
  publish(message: T): void;
  /** Returns the unsubscribe function. */
  subscribe(listener: (message: T) => void): () => void;
}

function topic<T>(name: string): Topic<T> {
  const ch: Channel = channel(name);
  return {
    name,
    get active() {
      return ch.hasSubscribers;
    },
    publish(message) {
      if (ch.hasSubscribers) ch.publish(message);
    },
    subscribe(listener) {
      const h = (m: unknown) => listener(m as T);
      ch.subscribe(h);
      return () => {
        ch.unsubscribe(h);
      };
    },
  };
}

export const readStart = topic<LayerReadMessage>('ferry:layer.read.start');
export const readEnd = topic<LayerReadMessage>('ferry:layer.read.end');
export const demandChunk = topic<DemandChunkMessage>('ferry:layer.demand-chunk');
export const grpcCall = topic<GrpcCallMessage>('ferry:grpc.call');
