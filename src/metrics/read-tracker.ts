// ReadTracker: on-demand reads in flight (for the hung-read gauge), their latency, and per-layer read counts
// (reads, bytes, chunks found local vs fetched) for metrics and `ferry status`. Knows nothing of FUSE or sources.
import { performance } from 'node:perf_hooks';
import { demandChunk, readEnd, readStart, type LayerReadMessage } from './channels.js';

export interface LayerReadStats {
  reads: number;
  readBytes: number;
  readErrors: number;
  /** Demand chunk lookups that the local cache could answer… */
  chunksLocal: number;
  /** …and those that had to be fetched (peer or registry). */
  chunksFetched: number;
  /** Sum of read latencies, for a mean in status. */
  latencySumMs: number;
}

export interface ReadTrackerOptions {
  /** Layers tracked at most; reads of layers past it count only in the totals (bounded memory). */
  maxLayers?: number;
}

interface InFlight {
  readonly layer: string;
  readonly startMs: number;
  hungSeen: boolean;
}

function emptyLayer(): LayerReadStats {
  return { reads: 0, readBytes: 0, readErrors: 0, chunksLocal: 0, chunksFetched: 0, latencySumMs: 0 };
}

export class ReadTracker {
  private readonly inflight = new Map<number, InFlight>();
  private readonly perLayer = new Map<string, LayerReadStats>();
  private readonly maxLayers: number;
  private nextId = 1;
  private hungSeen = 0;

  constructor(o: ReadTrackerOptions = {}) {
    this.maxLayers = o.maxLayers ?? 1000;
  }

  /** Tracks the reads published on the layer channels (channels.ts) until the returned function is called. */
  observe(): () => void {
    const ends = new WeakMap<LayerReadMessage, (error: unknown, bytes?: number) => void>();
    const stops = [
      readStart.subscribe((m) => ends.set(m, this.start(m.layer, m.lengthBytes))),
      readEnd.subscribe((m) => ends.get(m)?.(m.error, m.bytes)),
      demandChunk.subscribe((m) => this.chunk(m.layer, m.local)),
    ];
    return () => {
      for (const stop of stops) stop();
    };
  }

  /**
   * A demand read of `lengthBytes` of `layer` starts; call the returned function once when it ends, with the
   * error (undefined on success) and the bytes it returned.
   */
  start(layer: string, lengthBytes: number): (error: unknown, bytes?: number) => void {
    const id = this.nextId++;
    const entry: InFlight = { layer, startMs: performance.now(), hungSeen: false };
    this.inflight.set(id, entry);
    let done = false;
    return (error, bytes = error === undefined ? lengthBytes : 0) => {
      if (done) return;
      done = true;
      this.inflight.delete(id);
      const ms = performance.now() - entry.startMs;
      const s = this.layer(layer);
      if (s !== undefined) {
        s.reads++;
        s.latencySumMs += ms;
        if (error === undefined) s.readBytes += bytes;
        else s.readErrors++;
      }
    };
  }

  /** A demand read needed chunk bytes: `local` when the cache held them before the fetch. */
  chunk(layer: string, local: boolean): void {
    const s = this.layer(layer);
    if (s === undefined) return;
    if (local) s.chunksLocal++;
    else s.chunksFetched++;
  }

  inFlight(): number {
    return this.inflight.size;
  }

  /** Reads in flight for longer than `thresholdMs`; each counts in hungTotal() the first time it is seen. */
  hung(thresholdMs: number, nowMs = performance.now()): number {
    let n = 0;
    for (const r of this.inflight.values()) {
      if (nowMs - r.startMs < thresholdMs) continue;
      n++;
      if (!r.hungSeen) {
        r.hungSeen = true;
        this.hungSeen++;
      }
    }
    return n;
  }

  /** Reads ever seen hung by hung() (each once). */
  hungTotal(): number {
    return this.hungSeen;
  }

  /** Age of the oldest read in flight, in ms (0 when none). */
  oldestMs(nowMs = performance.now()): number {
    let oldest = 0;
    for (const r of this.inflight.values()) oldest = Math.max(oldest, nowMs - r.startMs);
    return oldest;
  }

  layerStats(layer: string): Readonly<LayerReadStats> {
    return this.perLayer.get(layer) ?? emptyLayer();
  }

  /** Drops a layer's counters (its last mount went away). */
  forget(layer: string): void {
    this.perLayer.delete(layer);
  }

  private layer(layer: string): LayerReadStats | undefined {
    let s = this.perLayer.get(layer);
    if (s === undefined) {
      if (this.perLayer.size >= this.maxLayers) return undefined;
      s = emptyLayer();
      this.perLayer.set(layer, s);
    }
    return s;
  }
}
