// Membership: the live peer set. Candidates come from Discovery; each is probed (authenticated /healthz with a
// short timeout). A failed probe or request marks a peer down at once; down peers are re-probed with backoff;
// a peer that sent bad bytes, an unauthenticated answer or stalled sits out a cool-down. Dead peers therefore cost at most one short timeout.
import type { Logger } from '../log.js';
import type { Clock, TimerHandle } from './clock.js';

/** What the fetch path needs to know about peers. */
export interface PeerView {
  readonly self: string;
  /** Live peers, self included, sorted. */
  live(): readonly string[];
  /** A transport failure talking to `peer`: treat it as down until a probe succeeds. */
  markDown(peer: string, reason: string): void;
  /** `peer` misbehaved (bad bytes, an unauthenticated answer, a stall): avoid it for a cool-down. */
  penalise(peer: string, reason?: string): void;
}

export interface MembershipOptions {
  self: string;
  candidates: () => Promise<string[]>;
  probe: (peer: string, signal: AbortSignal) => Promise<void>;
  clock: Clock;
  log: Logger;
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
  refreshIntervalMs?: number;
  maxBackoffMs?: number;
  penaltyMs?: number;
  /** Called when a peer goes down (the transport drops its connection so hung streams fail at once). */
  onDown?: (peer: string) => void;
}

interface PeerState {
  up: boolean;
  failures: number;
  nextProbeAt: number;
  probing: boolean;
  penalisedUntil: number;
  penalties: number;
}

export class Membership implements PeerView {
  readonly self: string;
  private readonly o: Required<Omit<MembershipOptions, 'self' | 'onDown'>>;
  private readonly onDown: (peer: string) => void;
  private readonly peers = new Map<string, PeerState>();
  private liveCache: readonly string[] | undefined;
  private startedAt = 0;
  private timer: TimerHandle | undefined;
  private lastRefresh = -Infinity;
  private stopped = true;

  constructor(options: MembershipOptions) {
    this.self = options.self;
    this.o = {
      probeIntervalMs: 1000,
      probeTimeoutMs: 300,
      refreshIntervalMs: 10_000,
      maxBackoffMs: 2000,
      penaltyMs: 60_000,
      ...options,
    };
    this.onDown = options.onDown ?? (() => undefined);
  }

  /**
   * Resolves once every known peer is up, or `maxWaitMs` after start: a node that starts with its peers waits
   * that long at most for them to answer, so that all agree on who owns what (the index owner, for one).
   */
  async settled(maxWaitMs: number): Promise<void> {
    for (;;) {
      const now = this.o.clock.now();
      if (this.stopped || now - this.startedAt >= maxWaitMs) return;
      if ([...this.peers.values()].every((s) => s.up)) return;
      await new Promise<void>((r) => this.o.clock.after(50, r));
    }
  }

  async start(): Promise<void> {
    this.startedAt = this.o.clock.now();
    this.stopped = false;
    await this.refresh();
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** Re-reads the candidates now (DNS re-resolution, a changed peers file). */
  async refresh(): Promise<void> {
    this.lastRefresh = this.o.clock.now();
    const ids = new Set(await this.o.candidates());
    ids.delete(this.self);
    for (const id of ids) {
      if (!this.peers.has(id)) {
        this.peers.set(id, {
          up: false,
          failures: 0,
          nextProbeAt: 0,
          probing: false,
          penalisedUntil: 0,
          penalties: 0,
        });
        this.liveCache = undefined;
      }
    }
    for (const id of [...this.peers.keys()]) {
      if (!ids.has(id)) {
        this.peers.delete(id);
        this.liveCache = undefined;
      }
    }
    this.probeDue();
  }

  live(): readonly string[] {
    if (this.liveCache !== undefined) return this.liveCache;
    const now = this.o.clock.now();
    const out = [this.self];
    for (const [id, s] of this.peers) if (s.up && s.penalisedUntil <= now) out.push(id);
    out.sort();
    this.liveCache = out;
    return out;
  }

  markDown(peer: string, reason: string): void {
    const s = this.peers.get(peer);
    if (s === undefined || !s.up) return;
    this.o.log.info({ peer, reason }, `p2p: peer ${peer} down (${reason})`);
    this.down(s);
    this.onDown(peer);
  }

  penalise(peer: string, reason = 'sent bad bytes'): void {
    const s = this.peers.get(peer);
    if (s === undefined) return;
    s.penalties++;
    s.penalisedUntil = this.o.clock.now() + this.o.penaltyMs;
    this.liveCache = undefined;
    this.o.log.warn(
      { peer, penalties: s.penalties, reason },
      `p2p: peer ${peer} penalised (${reason}); avoided for ${this.o.penaltyMs} ms`,
    );
  }

  /** Per-peer state, for status output and tests. */
  snapshot(): Array<{ peer: string; up: boolean; failures: number; penalties: number; penalised: boolean }> {
    const now = this.o.clock.now();
    return [...this.peers].map(([peer, s]) => ({
      peer,
      up: s.up,
      failures: s.failures,
      penalties: s.penalties,
      penalised: s.penalisedUntil > now,
    }));
  }

  private down(s: PeerState): void {
    s.up = false;
    s.failures++;
    s.nextProbeAt = this.o.clock.now() + Math.min(this.o.maxBackoffMs, 100 * 2 ** s.failures);
    this.liveCache = undefined;
  }

  private tick(): void {
    if (this.stopped) return;
    this.liveCache = undefined; // penalties expire with time
    if (this.o.clock.now() - this.lastRefresh >= this.o.refreshIntervalMs) {
      void this.refresh().catch((e: unknown) => this.o.log.warn({ err: e }, 'p2p: peer discovery failed'));
    } else {
      this.probeDue();
    }
    this.timer = this.o.clock.after(Math.min(250, this.o.probeIntervalMs), () => this.tick());
  }

  private probeDue(): void {
    const now = this.o.clock.now();
    for (const [id, s] of this.peers) {
      if (s.probing || s.nextProbeAt > now) continue;
      s.probing = true;
      void this.probeOne(id, s);
    }
  }

  private async probeOne(id: string, s: PeerState): Promise<void> {
    const ac = new AbortController();
    const timer = this.o.clock.after(this.o.probeTimeoutMs, () => ac.abort());
    try {
      await this.o.probe(id, ac.signal);
      if (!s.up) this.o.log.info({ peer: id }, `p2p: peer ${id} up`);
      s.up = true;
      s.failures = 0;
      s.nextProbeAt = this.o.clock.now() + this.o.probeIntervalMs;
      this.liveCache = undefined;
    } catch (e) {
      const wasUp = s.up;
      if (wasUp) this.o.log.info({ peer: id, err: e }, `p2p: peer ${id} failed a probe`);
      this.down(s);
      if (wasUp) this.onDown(id);
    } finally {
      timer.cancel();
      s.probing = false;
    }
  }
}
