// Prefetcher: runs a PrefetchPlan through the ChunkSource with priority 'prefetch' and bounded concurrency,
// skips what is cached or already demanded, counts hits (prefetched chunks a start then read), and cancels.
import { setMaxListeners } from 'node:events';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { Logger } from '../log.js';
import type { ChunkSource } from '../source/chunk-source.js';
import { InvalidArgumentError, isFerryError } from '../errors.js';
import type { PlanItem, PlanPhase } from './plan.js';

/** Anything that can say whether a chunk is already local (ChunkStore fits). */
export interface CachedCheck {
  has(d: Digest): boolean | Promise<boolean>;
}

export interface PrefetchStats {
  planned: number;
  plannedBytes: number;
  /** Fetched by the prefetcher (from wherever the source found them). */
  fetched: number;
  fetchedBytes: number;
  alreadyCached: number;
  /** Planned chunks a demand read asked for before the prefetcher reached them (skipped). */
  demandedFirst: number;
  /** Prefetched chunks that a demand read then used. */
  hits: number;
  hitBytes: number;
  /** Demand reads that joined a prefetch still in flight (promoted to demand by the source stack). */
  joined: number;
  errors: number;
  /** Fetched bytes no demand read has used (yet). */
  wastedBytes: number;
  /** Distinct chunks demand reads touched while this prefetcher ran. */
  demandChunks: number;
}

export type PrefetchPhase = 'pending' | PlanPhase | 'done' | 'cancelled' | 'failed';

export interface PrefetchStatus {
  phase: PrefetchPhase;
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
  stats: PrefetchStats;
}

export interface PrefetcherOptions {
  source: ChunkSource;
  /** Chunks it has are counted as already cached and not fetched. */
  cached?: CachedCheck;
  /** Prefetch fetches in flight at most. */
  concurrency: number;
  log: Logger;
}

type ItemState = 'planned' | 'inflight' | 'fetched' | 'used' | 'skipped';

export class Prefetcher {
  private readonly o: PrefetcherOptions;
  private readonly log: Logger;
  private readonly controller = new AbortController();
  private readonly states = new Map<Digest, ItemState>();
  private readonly sizes = new Map<Digest, number>();
  private readonly demanded = new Set<Digest>();
  private items: PlanItem[] = [];
  private cursor = 0;
  /** run({ open: true }) until close(): append() may add items (a layer's share of the plan as it mounts). */
  private open = false;
  private workers = 0;
  private settle: (() => void) | undefined;
  private done = 0;
  private doneBytes = 0;
  private phase: PrefetchPhase = 'pending';
  private running: Promise<PrefetchStats> | undefined;
  private readonly s: PrefetchStats = {
    planned: 0,
    plannedBytes: 0,
    fetched: 0,
    fetchedBytes: 0,
    alreadyCached: 0,
    demandedFirst: 0,
    hits: 0,
    hitBytes: 0,
    joined: 0,
    errors: 0,
    wastedBytes: 0,
    demandChunks: 0,
  };

  constructor(options: PrefetcherOptions) {
    if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1) {
      throw new InvalidArgumentError(
        `prefetch concurrency must be a positive integer, got ${options.concurrency}`,
      );
    }
    this.o = options;
    this.log = options.log.child({ component: 'prefetch' });
    // Every in-flight fetch (and each middleware under it) listens on this one signal.
    setMaxListeners(Math.max(10, options.concurrency * 8), this.controller.signal);
  }

  /**
   * A demand read touched `chunk` (wire it next to the recorder on onChunkRead). O(1), never throws. May be
   * called before `run`: chunks demanded early are then skipped by the plan.
   */
  noteDemand(index: LayerIndex, chunk: number): void {
    try {
      const digest = index.chunks[chunk]?.digest;
      if (digest === undefined || this.demanded.has(digest)) return;
      this.demanded.add(digest);
      this.s.demandChunks++;
      const state = this.states.get(digest);
      if (state === 'fetched') {
        this.states.set(digest, 'used');
        this.s.hits++;
        this.s.hitBytes += this.sizes.get(digest) ?? 0;
      } else if (state === 'inflight') {
        this.states.set(digest, 'used');
        this.s.joined++;
      }
    } catch {
      // Accounting must never fail a read.
    }
  }

  /**
   * Fetches the plan's chunks in order; resolves with the stats when all are done or on cancel. With `open`,
   * append() may add more until close().
   */
  run(items: readonly PlanItem[], opts: { open?: boolean } = {}): Promise<PrefetchStats> {
    if (this.running !== undefined) throw new InvalidArgumentError('prefetcher already ran');
    this.open = opts.open === true;
    this.items = [...items];
    for (const it of items) this.plan(it); // those fetchNow took stay listed: counted done when reached
    this.running = new Promise<void>((resolve) => {
      this.settle = resolve;
    }).then(() => {
      if (this.phase !== 'cancelled') this.phase = 'done';
      return this.stats();
    });
    this.spawn();
    if (items.length === 0 && !this.open && this.phase === 'pending') this.phase = 'done';
    this.settleIfIdle();
    return this.running;
  }

  /**
   * More items for an open run: those not yet planned, trace and default ones ahead of any background ones still
   * waiting (a layer that mounts later has its traced chunks fetched before the completion of those below it).
   */
  append(items: readonly PlanItem[]): void {
    if (!this.open) throw new InvalidArgumentError('prefetcher is not open for more items');
    if (this.controller.signal.aborted) return;
    const fresh = items.filter((it) => this.plan(it));
    const front = fresh.filter((it) => it.phase !== 'background');
    const back = fresh.filter((it) => it.phase === 'background');
    let at = this.cursor;
    while (at < this.items.length && this.items[at]!.phase !== 'background') at++;
    this.items.splice(at, 0, ...front);
    this.items.push(...back);
    this.spawn();
  }

  /** No more items for an open run: it resolves once those queued are done. */
  close(): void {
    this.open = false;
    this.settleIfIdle();
  }

  /** Workers claim their first item synchronously, so each one started here has an item to fetch. */
  private spawn(): void {
    while (
      !this.controller.signal.aborted &&
      this.workers < this.o.concurrency &&
      this.cursor < this.items.length
    ) {
      this.workers++;
      void this.worker().finally(() => {
        this.workers--;
        this.settleIfIdle();
      });
    }
  }

  private settleIfIdle(): void {
    if (this.settle === undefined || this.workers > 0) return;
    if (!this.controller.signal.aborted && (this.open || this.cursor < this.items.length)) return;
    this.settle();
    this.settle = undefined;
  }

  /**
   * Fetches one item now, before `run` (a start set reads file heads as it is planned), counted like a planned
   * chunk; `run` will not fetch it again. Resolves with the chunk's bytes (from the cache if it was there).
   */
  async fetchNow(item: PlanItem): Promise<Buffer> {
    if (this.running !== undefined) throw new InvalidArgumentError('prefetcher already ran');
    this.plan(item);
    const signal = this.controller.signal;
    return (
      (await this.one(item, signal)) ?? (await this.o.source.fetch({ ...item.req, background: true }, signal))
    );
  }

  /** Counts `it` as planned; false when its chunk already was. */
  private plan(it: PlanItem): boolean {
    if (this.states.has(it.digest)) return false;
    this.s.planned++;
    this.s.plannedBytes += it.size;
    this.sizes.set(it.digest, it.size);
    this.states.set(it.digest, 'planned');
    return true;
  }

  /** Stops queuing and aborts in-flight prefetches (a demand reader sharing one keeps it alive). */
  cancel(): void {
    if (this.phase === 'done') return;
    this.phase = 'cancelled';
    this.controller.abort();
    this.settleIfIdle();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stats(): PrefetchStats {
    let wasted = 0;
    for (const [d, st] of this.states) if (st === 'fetched') wasted += this.sizes.get(d) ?? 0;
    return { ...this.s, wastedBytes: wasted };
  }

  status(): PrefetchStatus {
    return {
      phase: this.phase,
      chunksDone: this.done,
      chunksTotal: this.items.length,
      bytesDone: this.doneBytes,
      bytesTotal: this.s.plannedBytes,
      stats: this.stats(),
    };
  }

  private async worker(): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted && this.cursor < this.items.length) {
      const item = this.items[this.cursor++]!;
      if (this.phase !== 'cancelled') this.phase = item.phase;
      await this.one(item, signal);
      this.done++;
      this.doneBytes += item.size;
    }
  }

  /** Fetches a planned item unless it is cached, demanded or done; its bytes when this call fetched them. */
  private async one(item: PlanItem, signal: AbortSignal): Promise<Buffer | undefined> {
    const d = item.digest;
    if (this.states.get(d) !== 'planned') return undefined;
    if (this.demanded.has(d)) {
      // The reader fetches it itself; fetching again would only compete with it.
      this.states.set(d, 'skipped');
      this.s.demandedFirst++;
      return undefined;
    }
    try {
      if (this.o.cached !== undefined && (await this.o.cached.has(d))) {
        this.states.set(d, 'skipped');
        this.s.alreadyCached++;
        return undefined;
      }
    } catch {
      // Unknown: fetch it; the source's store layer answers locally if it can.
    }
    this.states.set(d, 'inflight');
    try {
      const bytes = await this.o.source.fetch({ ...item.req, background: true }, signal);
      this.s.fetched++;
      this.s.fetchedBytes += item.size;
      if (this.states.get(d) === 'inflight') this.states.set(d, 'fetched');
      return bytes;
    } catch (e) {
      if (this.states.get(d) === 'inflight') this.states.set(d, 'skipped');
      if (signal.aborted || isFerryError(e, 'ABORTED')) return undefined;
      this.s.errors++;
      this.log.debug({ err: e, digest: d, layer: item.req.index.layerDigest }, 'prefetch of a chunk failed');
      return undefined;
    }
  }
}
