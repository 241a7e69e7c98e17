// The simulated network: each link (a node's uplink or downlink, the registry's uplink) is a FIFO server that
// spends size/rate on every transfer in arrival order; a transfer arrives when both its links are done with it,
// plus one hop of latency. Aborted transfers give back the unsent tail and count only the bytes already sent.
import { AbortedError } from '../../src/errors.js';
import type { SimClock } from './sim-clock.js';

export class Link {
  /** Time at which the link has sent everything queued on it. */
  freeAt = 0;
  /** Bytes put on the wire so far (aborted transfers count what had left). */
  sentBytes = 0;
  readonly bytesPerMs: number;

  constructor(mbit: number) {
    this.bytesPerMs = (mbit * 1e6) / 8 / 1000;
  }
}

export interface SimNetworkOptions {
  clock: SimClock;
  /** One-way latency of every hop (request, response headers, data). */
  latencyMs: number;
}

export class SimNetwork {
  readonly clock: SimClock;
  readonly latencyMs: number;

  constructor(options: SimNetworkOptions) {
    this.clock = options.clock;
    this.latencyMs = options.latencyMs;
  }

  /** A small message (request, headers): one hop of latency, no bandwidth. */
  hop(): Promise<void> {
    return new Promise((resolve) => this.clock.after(this.latencyMs, resolve));
  }

  /** `sizeBytes` from `up` (the sender's uplink) to `down` (the receiver's downlink). */
  transfer(up: Link, down: Link, sizeBytes: number, signal?: AbortSignal): Promise<void> {
    const now = this.clock.now();
    const u0 = Math.max(now, up.freeAt);
    const u1 = u0 + sizeBytes / up.bytesPerMs;
    const d0 = Math.max(u0, down.freeAt);
    const d1 = d0 + sizeBytes / down.bytesPerMs;
    up.freeAt = u1;
    down.freeAt = d1;
    up.sentBytes += sizeBytes;
    const arrival = Math.max(u1, d1) + this.latencyMs;
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        this.giveBack(up, down, u0, u1, d0, d1, sizeBytes);
        reject(new AbortedError('transfer aborted'));
        return;
      }
      const onAbort = (): void => {
        timer.cancel();
        this.giveBack(up, down, u0, u1, d0, d1, sizeBytes);
        reject(new AbortedError('transfer aborted'));
      };
      const timer = this.clock.at(arrival, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private giveBack(
    up: Link,
    down: Link,
    u0: number,
    u1: number,
    d0: number,
    d1: number,
    sizeBytes: number,
  ): void {
    const now = this.clock.now();
    const sentFraction = Math.min(1, Math.max(0, (now - u0) / (u1 - u0 || 1)));
    up.sentBytes -= sizeBytes * (1 - sentFraction);
    // Only the last transfer queued on a link can give its slot back without reordering the queue.
    if (up.freeAt === u1) up.freeAt = Math.max(now, u0);
    if (down.freeAt === d1) down.freeAt = Math.max(now, d0);
  }
}
