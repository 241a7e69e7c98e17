// TraceRecorder: sees every chunk read of one image start (LayerReader's onChunkRead hook) and keeps the first
// access of each chunk until the window ends or reads go quiet. O(1) per read, no I/O, never throws.
import { performance } from 'node:perf_hooks';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { InvalidArgumentError } from '../errors.js';
import { TRACE_VERSION, type Trace, type TraceEntry } from './trace.js';

export interface TraceRecorderOptions {
  manifestDigest: Digest;
  workloadKey?: string | undefined;
  /** Record for at most this long after the first read. */
  windowMs: number;
  /** Close once no read arrived for this long (after the first read). */
  quietMs: number;
  /** Distinct chunks kept at most; later first accesses are dropped. */
  maxEntries: number;
  /** Called once when the recording closes with at least one entry. Exceptions are swallowed. */
  onComplete?: (trace: Trace) => void;
  /** Clock for the idle check (tests inject one); default performance.now. */
  now?: () => number;
  /** How often `start()`'s timer checks for the window end or quiet; default 1000 ms. */
  pollIntervalMs?: number;
}

export type RecorderState = 'waiting' | 'recording' | 'closed';

export class TraceRecorder {
  private readonly o: TraceRecorderOptions;
  private readonly now: () => number;
  private readonly firsts = new Map<LayerIndex, Map<number, number>>();
  private count = 0;
  private firstT = 0;
  private lastT = 0;
  /** Recorder clock minus reader clock, fixed at the first read, so `poll` can compare the two. */
  private clockOffset = 0;
  private _state: RecorderState = 'waiting';
  private trace: Trace | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The function to pass as `onChunkRead`. */
  readonly hook: (index: LayerIndex, chunk: number, tMs: number) => void;

  constructor(options: TraceRecorderOptions) {
    for (const k of ['windowMs', 'quietMs', 'maxEntries'] as const) {
      if (!Number.isFinite(options[k]) || options[k] <= 0) {
        throw new InvalidArgumentError(`recorder ${k} must be positive, got ${options[k]}`);
      }
    }
    this.o = options;
    this.now = options.now ?? (() => performance.now());
    this.hook = (index, chunk, tMs) => this.record(index, chunk, tMs);
  }

  get state(): RecorderState {
    return this._state;
  }

  get entries(): number {
    return this.count;
  }

  /** One read of `chunk` of `index` at `tMs` (reader clock). */
  record(index: LayerIndex, chunk: number, tMs: number): void {
    try {
      if (this._state === 'closed') return;
      if (this._state === 'waiting') {
        this._state = 'recording';
        this.firstT = tMs;
        this.lastT = tMs;
        this.clockOffset = this.now() - tMs;
      } else if (tMs - this.lastT > this.o.quietMs || tMs - this.firstT > this.o.windowMs) {
        this.close();
        return;
      }
      if (tMs > this.lastT) this.lastT = tMs;
      let layer = this.firsts.get(index);
      if (layer === undefined) {
        layer = new Map();
        this.firsts.set(index, layer);
      }
      if (layer.has(chunk) || this.count >= this.o.maxEntries) return;
      layer.set(chunk, Math.max(0, tMs - this.firstT));
      this.count++;
    } catch {
      // The read path must never fail because of tracing.
    }
  }

  /** Closes the recording if the window has passed or reads have gone quiet. */
  poll(): void {
    if (this._state !== 'recording') return;
    const t = this.now() - this.clockOffset;
    if (t - this.lastT > this.o.quietMs || t - this.firstT > this.o.windowMs) this.close();
  }

  /** Starts a timer that polls until the recording closes (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.timer !== undefined || this._state === 'closed') return;
    this.timer = setInterval(() => this.poll(), this.o.pollIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Closes now (e.g. at unmount) and returns the trace, or undefined when nothing was read. */
  finish(): Trace | undefined {
    this.close();
    return this.trace;
  }

  private close(): void {
    if (this._state === 'closed') return;
    const started = this._state === 'recording';
    this._state = 'closed';
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (!started || this.count === 0) return;
    try {
      this.trace = this.build();
      this.o.onComplete?.(this.trace);
    } catch {
      // onComplete belongs to the caller; a throw there must not escape into a FUSE read.
    }
  }

  private build(): Trace {
    const entries: TraceEntry[] = [];
    for (const [index, chunks] of this.firsts) {
      for (const [chunkIndex, firstAccessMs] of chunks) {
        const c = index.chunks[chunkIndex];
        if (c === undefined) continue;
        entries.push({
          layerDigest: index.layerDigest,
          chunkDigest: c.digest,
          chunkIndex,
          size: c.size,
          firstAccessMs,
        });
      }
    }
    entries.sort((a, b) => a.firstAccessMs - b.firstAccessMs);
    return {
      version: TRACE_VERSION,
      manifestDigest: this.o.manifestDigest,
      ...(this.o.workloadKey !== undefined ? { workloadKey: this.o.workloadKey } : {}),
      recordedAt: new Date().toISOString(),
      durationMs: Math.max(0, this.lastT - this.firstT),
      entries,
    };
  }
}
