// CpuPressure: how much prefetch a process can afford right now — none while a reader's decode job waits, and
// fewer fetches the busier the event loop (which also answers FUSE) was over the last sample.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { PrefetchPressure } from './limit.js';

/** What CpuPressure needs of the decode pool (DecodePool fits). */
export interface DecodeBacklog {
  readonly size: number;
  stats(): { queued: number; queuedDemand: number };
}

export interface CpuPressureOptions {
  pool?: DecodeBacklog | undefined;
  /** Event-loop utilisation up to which prefetch runs at full width; default 0.5. */
  low?: number;
  /** Utilisation from which one prefetch fetch at a time is allowed; default 0.9. */
  high?: number;
  /** Utilisation is measured over windows of at least this long; default 100 ms. */
  sampleMs?: number;
  /** Test hook: the utilisation source (default performance.eventLoopUtilization). */
  utilisation?: () => number;
}

export class CpuPressure implements PrefetchPressure {
  private readonly pool: DecodeBacklog | undefined;
  private readonly low: number;
  private readonly high: number;
  private readonly sampleMs: number;
  private readonly measure: () => number;
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private lastAt = performance.now();
  private elu = 0;

  constructor(o: CpuPressureOptions = {}) {
    this.pool = o.pool;
    this.low = o.low ?? 0.5;
    this.high = o.high ?? 0.9;
    this.sampleMs = o.sampleMs ?? 100;
    this.measure = o.utilisation ?? (() => this.sample());
  }

  /** The event loop's utilisation (0–1) over the latest complete sample window. */
  get utilisation(): number {
    return this.measure();
  }

  allowed(max: number): number {
    const pool = this.pool?.stats();
    // A reader's decode is queued: more prefetch would only sit in front of the next one.
    if (pool !== undefined && pool.queuedDemand > 0) return 0;
    let n = max;
    const u = this.measure();
    if (u >= this.high) n = 1;
    else if (u > this.low) n = Math.max(1, Math.floor((max * (this.high - u)) / (this.high - this.low)));
    // Decode work already queued is CPU spent later: do not pile more on than the workers can take.
    if (pool !== undefined && pool.queued >= 2 * this.pool!.size) n = Math.min(n, 1);
    return n;
  }

  private sample(): number {
    const now = performance.now();
    if (now - this.lastAt >= this.sampleMs) {
      const cur = performance.eventLoopUtilization();
      this.elu = performance.eventLoopUtilization(cur, this.last).utilization;
      this.last = cur;
      this.lastAt = now;
    }
    return this.elu;
  }
}
