// A node's view of the live peers in the simulation, standing in for Membership (which would cost N² probes a
// second at N = 1,000): the same contract — a failed request marks a peer down at once, a down peer is
// re-probed with Membership's backoff and comes back if it is alive — with departures and joins learned after a
// probe/discovery delay that the cluster schedules.
import type { PeerView } from '../../src/p2p/membership.js';
import type { SimClock } from './sim-clock.js';

export interface SimViewOptions {
  self: string;
  peers: readonly string[];
  clock: SimClock;
  /** Whether `peer` would answer a probe now. */
  alive: (peer: string) => boolean;
  probeTimeoutMs: number;
  maxBackoffMs: number;
}

export class SimView implements PeerView {
  readonly self: string;
  private readonly sorted: string[];
  /** Peers this node knows of (discovery), whether up or down. */
  private readonly known = new Set<string>();
  private readonly failures = new Map<string, number>();
  markedDown = 0;

  constructor(private readonly o: SimViewOptions) {
    this.self = o.self;
    this.sorted = [o.self];
    for (const p of o.peers) this.learnJoin(p);
  }

  live(): readonly string[] {
    return this.sorted;
  }

  markDown(peer: string): void {
    if (!this.remove(peer)) return;
    this.markedDown++;
    this.scheduleProbe(peer);
  }

  penalise(peer: string): void {
    this.markDown(peer); // no peer lies in the simulation
  }

  learnJoin(peer: string): void {
    if (peer === this.self || this.known.has(peer)) return;
    this.known.add(peer);
    this.insert(peer);
  }

  learnLeave(peer: string): void {
    this.known.delete(peer);
    this.remove(peer);
  }

  private scheduleProbe(peer: string): void {
    const f = (this.failures.get(peer) ?? 0) + 1;
    this.failures.set(peer, f);
    this.o.clock.after(Math.min(this.o.maxBackoffMs, 100 * 2 ** f), () => {
      if (!this.known.has(peer)) return;
      if (this.o.alive(peer)) {
        this.failures.delete(peer);
        this.insert(peer);
      } else {
        this.o.clock.after(this.o.probeTimeoutMs, () => this.scheduleProbe(peer));
      }
    });
  }

  private insert(peer: string): void {
    const i = this.search(peer);
    if (this.sorted[i] !== peer) this.sorted.splice(i, 0, peer);
  }

  private remove(peer: string): boolean {
    const i = this.search(peer);
    if (this.sorted[i] !== peer) return false;
    this.sorted.splice(i, 1);
    return true;
  }

  private search(peer: string): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid]! < peer) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
