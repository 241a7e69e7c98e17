// DecodePool: worker threads that decode and verify chunks, so inflate and SHA-256 (~20 ms per 1 MiB chunk)
// never stall the event loop that every mount's FUSE callbacks share.
import { defaultDecodeWorkers } from '../os/threadpool.js';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { AbortedError, InvalidArgumentError, UnavailableError, type FerryError } from '../errors.js';
import { decodeAndVerify, type ChunkJob } from './chunk-job.js';
import { workerEntry } from './worker-entry.js';
import { errorFrom, ownedView, type DecodeReply, type DecodeRequest } from './worker-protocol.js';

export interface DecodePoolOptions {
  /**
   * Worker threads, started on demand; default min(4, cores - 1), at least 1: the main thread still answers
   * FUSE, hashes and copies, and each worker costs ~20 MB of RSS.
   */
  workers?: number;
  /** Jobs with less work than this (compressed + decoded bytes) run inline: a round trip costs more. */
  inlineBelowBytes?: number;
  /** V8 heap limits of each worker (default WORKER_RESOURCE_LIMITS). */
  resourceLimits?: ResourceLimits;
}

/**
 * A worker's own heap: decoding keeps its bytes in ArrayBuffers (outside these limits, sized by the index's
 * validated chunk and span caps), so the JS heap needs little; a runaway worker dies with
 * ERR_WORKER_OUT_OF_MEMORY, its job fails UNAVAILABLE and a fresh worker takes the next one. Not much lower:
 * V8 aborts the whole process when a heap this small cannot even hold the worker's code (2 MB does that).
 * A small young generation (as the daemon's own, bin/ferry.js): a worker's JS objects die young, and each
 * scavenge also frees the dead Buffers of decoded spans, which otherwise wait in the worker's malloc arena.
 */
export const WORKER_RESOURCE_LIMITS: ResourceLimits = {
  maxOldGenerationSizeMb: 64,
  maxYoungGenerationSizeMb: 4,
  codeRangeSizeMb: 16,
  stackSizeMb: 4,
};

export interface DecodeOptions {
  signal?: AbortSignal;
  /** The caller gives up `compressed`: if it owns its whole ArrayBuffer, that is transferred, not copied. */
  handOver?: boolean;
  /** Queued 'prefetch' jobs start only when no 'demand' job waits (default 'demand'). */
  priority?: 'demand' | 'prefetch';
}

export interface DecodePoolStats {
  workers: number;
  busy: number;
  queued: number;
  /** Of `queued`, the jobs a reader waits for (demand priority). */
  queuedDemand: number;
  completed: number;
  failed: number;
  /** Workers that exited or threw outside a job, and were replaced. */
  crashed: number;
}

interface Job {
  readonly id: number;
  readonly job: ChunkJob;
  readonly compressed: Uint8Array;
  readonly handOver: boolean;
  priority: 'demand' | 'prefetch';
  readonly resolve: (bytes: Buffer) => void;
  readonly reject: (e: FerryError) => void;
  settled: boolean;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
  dead: boolean;
}

const DEFAULT_INLINE_BELOW_BYTES = 64 * 1024;

export class DecodePool {
  readonly size: number;
  private readonly inlineBelowBytes: number;
  private readonly resourceLimits: ResourceLimits;
  private readonly slots: Slot[] = [];
  /** Waiting jobs: a reader's first, then prefetch (FIFO within each), so prefetch never delays a reader. */
  private readonly demand: Job[] = [];
  private readonly prefetch: Job[] = [];
  private nextId = 1;
  private closed = false;
  private counts = { completed: 0, failed: 0, crashed: 0 };

  constructor(options: DecodePoolOptions = {}) {
    this.size = options.workers ?? defaultDecodeWorkers();
    if (!Number.isInteger(this.size) || this.size < 1) {
      throw new InvalidArgumentError(`decode pool: workers must be a positive integer, got ${this.size}`);
    }
    this.inlineBelowBytes = options.inlineBelowBytes ?? DEFAULT_INLINE_BELOW_BYTES;
    this.resourceLimits = options.resourceLimits ?? WORKER_RESOURCE_LIMITS;
  }

  /** Decodes `job` from `compressed` (its span) and verifies the digest off the event loop. */
  decodeAndVerify(job: ChunkJob, compressed: Uint8Array, options: DecodeOptions = {}): Promise<Buffer> {
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(aborted(job, signal));
    if (this.closed) return Promise.reject(new UnavailableError(`${job.label}: decode pool is closed`));
    if (compressed.length + job.skip + job.size < this.inlineBelowBytes) {
      return new Promise((resolve) => resolve(decodeAndVerify(job, compressed)));
    }
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = (): void => {
        const queue = entry.priority === 'demand' ? this.demand : this.prefetch;
        const i = queue.indexOf(entry);
        if (i >= 0) queue.splice(i, 1);
        settle(entry, () => reject(aborted(job, signal)));
      };
      const entry: Job = {
        id: this.nextId++,
        job,
        compressed,
        handOver: options.handOver === true,
        priority: options.priority ?? 'demand',
        resolve: (bytes) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(bytes);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
        settled: false,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      (entry.priority === 'demand' ? this.demand : this.prefetch).push(entry);
      this.dispatch();
    });
  }

  /** A reader now waits for the chunk `digest` queued as prefetch: it moves to the readers' queue. */
  promote(digest: string): void {
    for (let i = this.prefetch.length - 1; i >= 0; i--) {
      const j = this.prefetch[i]!;
      if (j.job.digest !== digest) continue;
      this.prefetch.splice(i, 1);
      j.priority = 'demand';
      this.demand.push(j);
    }
  }

  stats(): DecodePoolStats {
    return {
      workers: this.slots.length,
      busy: this.slots.filter((s) => s.job !== undefined).length,
      queued: this.demand.length + this.prefetch.length,
      queuedDemand: this.demand.length,
      ...this.counts,
    };
  }

  /** Fails queued and running jobs and terminates the workers. */
  async close(): Promise<void> {
    this.closed = true;
    for (const j of [...this.demand.splice(0), ...this.prefetch.splice(0)]) {
      settle(j, () => j.reject(new UnavailableError(`${j.job.label}: decode pool closed`)));
    }
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  /** Test hook: the workers running a job right now (a test may terminate one to simulate a crash). */
  runningWorkersForTest(): Worker[] {
    return this.slots.filter((s) => s.job !== undefined && !s.dead).map((s) => s.worker);
  }

  private dispatch(): void {
    while (this.demand.length + this.prefetch.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => s.job === undefined && !s.dead);
      if (slot === undefined) {
        if (this.slots.length >= this.size) return;
        try {
          slot = this.spawn();
        } catch (e) {
          const j = this.next()!;
          const why = e instanceof Error ? e.message : String(e);
          this.counts.failed++;
          settle(j, () =>
            j.reject(new UnavailableError(`${j.job.label}: cannot start a decode worker: ${why}`)),
          );
          continue;
        }
      }
      this.run(slot, this.next()!);
    }
  }

  private next(): Job | undefined {
    return this.demand.shift() ?? this.prefetch.shift();
  }

  private run(slot: Slot, job: Job): void {
    slot.job = job;
    const { view: compressed, buffer } = job.handOver ? ownedView(job.compressed) : copyOf(job.compressed);
    const transfer: ArrayBuffer[] = [buffer];
    let wire = job.job;
    if ('start' in wire && wire.start.window !== undefined) {
      // A copy: never detach (or structured-clone the whole backing store of) the index's own window.
      const window = copyOf(wire.start.window);
      wire = { ...wire, start: { ...wire.start, window: window.view } };
      transfer.push(window.buffer);
    }
    const req: DecodeRequest = { id: job.id, job: wire, compressed };
    // Referenced only while busy: an awaited job keeps the process alive, an idle pool never does.
    slot.worker.ref();
    slot.worker.postMessage(req, transfer);
  }

  private spawn(): Slot {
    const entry = workerEntry();
    const worker = new Worker(entry.script, {
      eval: entry.eval,
      name: 'ferry-decode',
      resourceLimits: this.resourceLimits,
    });
    worker.unref();
    const slot: Slot = { worker, job: undefined, dead: false };
    this.slots.push(slot);
    worker.on('message', (reply: DecodeReply) => this.onReply(slot, reply));
    worker.on('error', (e: unknown) =>
      this.onDeath(slot, `failed: ${e instanceof Error ? e.message : String(e)}`),
    );
    worker.on('exit', (code: number) => this.onDeath(slot, `exited with code ${code}`));
    return slot;
  }

  private onReply(slot: Slot, reply: DecodeReply): void {
    const job = slot.job;
    slot.job = undefined;
    slot.worker.unref();
    if (job !== undefined && job.id === reply.id) {
      if (reply.ok) {
        this.counts.completed++;
        const b = reply.bytes;
        settle(job, () => job.resolve(Buffer.from(b.buffer, b.byteOffset, b.byteLength)));
      } else {
        this.counts.failed++;
        settle(job, () => job.reject(errorFrom(reply.code, reply.message)));
      }
    }
    this.dispatch();
  }

  private onDeath(slot: Slot, how: string): void {
    if (slot.dead) return;
    slot.dead = true;
    this.slots.splice(this.slots.indexOf(slot), 1);
    if (!this.closed) this.counts.crashed++;
    const job = slot.job;
    slot.job = undefined;
    if (job !== undefined) {
      this.counts.failed++;
      settle(job, () => job.reject(new UnavailableError(`${job.job.label}: decode worker ${how}`)));
    }
    if (!this.closed) {
      void slot.worker.terminate();
      this.dispatch();
    }
  }
}

function settle(job: Job, f: () => void): void {
  if (job.settled) return;
  job.settled = true;
  f();
}

function copyOf(view: Uint8Array): { view: Uint8Array; buffer: ArrayBuffer } {
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return { view: copy, buffer: copy.buffer };
}

function aborted(job: ChunkJob, signal: AbortSignal | undefined): AbortedError {
  return new AbortedError(`${job.label}: decode aborted`, { cause: signal?.reason });
}
