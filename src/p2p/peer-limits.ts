// Per-peer admission: at most N requests in flight and a token bucket of requests per second, keyed by the
// peer's address. Over the limit the server answers 503/429 and the requester moves on (registry or next owner).
import type { Clock } from './clock.js';

export interface PeerLimitsOptions {
  maxConcurrent: number;
  /** 0 = unlimited. */
  requestsPerSecond: number;
  clock: Clock;
}

interface Bucket {
  active: number;
  tokens: number;
  at: number;
}

export class PeerLimits {
  private readonly o: PeerLimitsOptions;
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: PeerLimitsOptions) {
    this.o = options;
  }

  /** A release function when admitted; 'busy' (concurrency) or 'rate' otherwise. */
  admit(peer: string): (() => void) | 'busy' | 'rate' {
    const now = this.o.clock.now();
    let b = this.buckets.get(peer);
    if (b === undefined) {
      b = { active: 0, tokens: this.o.requestsPerSecond, at: now };
      this.buckets.set(peer, b);
    }
    if (b.active >= this.o.maxConcurrent) return 'busy';
    if (this.o.requestsPerSecond > 0) {
      const rps = this.o.requestsPerSecond;
      b.tokens = Math.min(rps, b.tokens + ((now - b.at) / 1000) * rps);
      b.at = now;
      if (b.tokens < 1) return 'rate';
      b.tokens -= 1;
    }
    b.active++;
    const bucket = b;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      bucket.active--;
    };
  }
}
