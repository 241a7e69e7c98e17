// LimitSource: at most `concurrency` fetches in `next` at once; waiting demand requests always start before
// waiting prefetch requests (FIFO within a class), so prefetch never delays a reader behind it.
import { AbortedError, InvalidArgumentError } from '../errors.js';
import {
  chunkOf,
  describeChunk,
  type ChunkPriority,
  type ChunkRequest,
  type ChunkSource,
} from './chunk-source.js';

interface Waiter {
  readonly req: ChunkRequest;
  priority: ChunkPriority;
  start(): void;
}

export interface LimitSourceOptions {
  next: ChunkSource;
  concurrency: number;
}

export class LimitSource implements ChunkSource {
  private readonly next: ChunkSource;
  private readonly concurrency: number;
  private readonly demand: Waiter[] = [];
  private readonly prefetch: Waiter[] = [];
  private running = 0;

  constructor(options: LimitSourceOptions) {
    if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1) {
      throw new InvalidArgumentError(
        `limit concurrency must be a positive integer, got ${options.concurrency}`,
      );
    }
    this.next = options.next;
    this.concurrency = options.concurrency;
  }

  get active(): number {
    return this.running;
  }

  get queued(): { demand: number; prefetch: number } {
    return { demand: this.demand.length, prefetch: this.prefetch.length };
  }

  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) throw new AbortedError(`${describeChunk(req)}: aborted while queued`);
    if (this.running >= this.concurrency) await this.enqueue(req, signal);
    else this.running++;
    try {
      return await this.next.fetch(req, signal);
    } finally {
      this.release();
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
      }
    }
    this.next.promote?.(req);
  }

  /** Resolves once a slot is handed to this request (the slot is already counted in `running`). */
  private enqueue(req: ChunkRequest, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const queue = waiter.priority === 'demand' ? this.demand : this.prefetch;
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        reject(new AbortedError(`${describeChunk(req)}: aborted while queued`));
      };
      const waiter: Waiter = {
        req,
        priority: req.priority,
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      (req.priority === 'demand' ? this.demand : this.prefetch).push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private release(): void {
    const w = this.demand.shift() ?? this.prefetch.shift();
    if (w === undefined) this.running--;
    else w.start(); // the slot passes straight to the waiter
  }
}
