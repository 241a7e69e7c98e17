// LimitSource: at most `concurrency` fetches in `next` at once; waiting demand requests always start before
// waiting prefetch requests (FIFO within a class), prefetch holds at most `prefetchSlots` of them (the rest stay
// free for readers), and a PrefetchPressure (CPU, decode backlog) holds background prefetch back further.
import { AbortedError, InvalidArgumentError } from '../errors.js';
import {
  chunkOf,
  describeChunk,
  type ChunkPriority,
  type ChunkRequest,
  type ChunkSource,
} from './chunk-source.js';

/** Says how many prefetch fetches may run now, out of `max` (0: pause until asked again). */
export interface PrefetchPressure {
  allowed(max: number): number;
}

interface Waiter {
  readonly req: ChunkRequest;
  priority: ChunkPriority;
  start(counted: ChunkPriority): void;
}

export interface LimitSourceOptions {
  next: ChunkSource;
  concurrency: number;
  /** Slots prefetch may hold at most; default concurrency − max(1, concurrency / 4), at least 1. */
  prefetchSlots?: number;
  pressure?: PrefetchPressure;
  /** While prefetch waits on pressure alone, it is asked again this often; default 20 ms. */
  recheckMs?: number;
}

export class LimitSource implements ChunkSource {
  private readonly next: ChunkSource;
  private readonly concurrency: number;
  private readonly prefetchSlots: number;
  private readonly pressure: PrefetchPressure | undefined;
  private readonly recheckMs: number;
  private readonly demand: Waiter[] = [];
  private readonly prefetch: Waiter[] = [];
  private running = 0;
  private runningPrefetch = 0;
  private recheck: NodeJS.Timeout | undefined;
  /** Prefetch fetches started, and how many of them had to wait for a reader or for pressure (for tests). */
  readonly counts = { demandStarted: 0, prefetchStarted: 0, prefetchHeld: 0 };

  constructor(options: LimitSourceOptions) {
    if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1) {
      throw new InvalidArgumentError(
        `limit concurrency must be a positive integer, got ${options.concurrency}`,
      );
    }
    this.next = options.next;
    this.concurrency = options.concurrency;
    const reserve = Math.max(1, Math.floor(options.concurrency / 4));
    this.prefetchSlots = Math.max(
      1,
      Math.min(options.concurrency, options.prefetchSlots ?? options.concurrency - reserve),
    );
    this.pressure = options.pressure;
    this.recheckMs = options.recheckMs ?? 20;
  }

  get active(): number {
    return this.running;
  }

  get activePrefetch(): number {
    return this.runningPrefetch;
  }

  get queued(): { demand: number; prefetch: number } {
    return { demand: this.demand.length, prefetch: this.prefetch.length };
  }

  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) throw new AbortedError(`${describeChunk(req)}: aborted while queued`);
    const counted = this.canStart(req, req.priority)
      ? this.take(req.priority)
      : await this.enqueue(req, signal);
    try {
      return await this.next.fetch(req, signal);
    } finally {
      this.running--;
      if (counted === 'prefetch') this.runningPrefetch--;
      this.pump();
    }
  }

  promote(req: ChunkRequest): void {
    const digest = chunkOf(req).digest;
    const i = this.prefetch.findIndex((w) => chunkOf(w.req).digest === digest);
    if (i >= 0) {
      const [w] = this.prefetch.splice(i, 1);
      if (w !== undefined) {
        w.priority = 'demand';
        this.demand.push(w);
        this.pump();
      }
    }
    this.next.promote?.(req);
  }

  private canStart(req: ChunkRequest, priority: ChunkPriority): boolean {
    if (this.running >= this.concurrency) return false;
    if (priority === 'demand') return true;
    // A reader waiting here goes first; prefetch never takes the slots kept for readers.
    if (this.demand.length > 0 || this.runningPrefetch >= this.prefetchSlots) return false;
    if (req.background !== true) return true;
    const allowed = this.pressure?.allowed(this.prefetchSlots) ?? this.prefetchSlots;
    return this.runningPrefetch < allowed;
  }

  private take(priority: ChunkPriority): ChunkPriority {
    this.running++;
    if (priority === 'prefetch') {
      this.runningPrefetch++;
      this.counts.prefetchStarted++;
    } else this.counts.demandStarted++;
    return priority;
  }

  /** Resolves with the class the slot was counted in, once one is handed to this request. */
  private enqueue(req: ChunkRequest, signal: AbortSignal | undefined): Promise<ChunkPriority> {
    if (req.priority === 'prefetch') this.counts.prefetchHeld++;
    return new Promise<ChunkPriority>((resolve, reject) => {
      const onAbort = (): void => {
        const queue = waiter.priority === 'demand' ? this.demand : this.prefetch;
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        reject(new AbortedError(`${describeChunk(req)}: aborted while queued`));
      };
      const waiter: Waiter = {
        req,
        priority: req.priority,
        start: (counted) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(counted);
        },
      };
      (req.priority === 'demand' ? this.demand : this.prefetch).push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pump();
    });
  }

  /** Hands free slots to waiters: readers first, then prefetch while it may run. */
  private pump(): void {
    for (;;) {
      let w: Waiter | undefined;
      if (this.demand.length > 0) w = this.running < this.concurrency ? this.demand.shift() : undefined;
      else {
        // FIFO, except that a reader's read-ahead passes background work held back by pressure.
        const i = this.prefetch.findIndex((x) => this.canStart(x.req, 'prefetch'));
        w = i >= 0 ? this.prefetch.splice(i, 1)[0] : undefined;
      }
      if (w === undefined) break;
      w.start(this.take(w.priority));
    }
    // Held back by pressure alone (CPU, decode backlog): nothing here frees it, so look again soon.
    if (this.prefetch.length > 0 && this.running < this.concurrency && this.recheck === undefined) {
      this.recheck = setTimeout(() => {
        this.recheck = undefined;
        this.pump();
      }, this.recheckMs);
    }
  }
}
