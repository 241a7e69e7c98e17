// DeadlineSource: a fetch slower than `deadlineMs` fails with DeadlineError for its caller, while the
// underlying fetch (often shared through dedupe) is NOT cancelled, so it can still finish and fill the cache.
import { DeadlineError, InvalidArgumentError } from '../errors.js';
import { describeChunk, type ChunkRequest, type ChunkSource } from './chunk-source.js';

export interface DeadlineSourceOptions {
  next: ChunkSource;
  deadlineMs: number;
}

/** Settles like `work`, or rejects with `onTimeout()` after `ms`; `work` itself is left running. */
export function raceDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref();
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/**
 * Settles like `work`, or rejects with `onAbort()` as soon as `signal` aborts; `work` itself is left running.
 * The listener lives only as long as `work`: racing every read against one long-lived promise instead would
 * keep each read's result reachable from that promise until it settles (a 512 MiB stream held 500 MB).
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  if (signal.aborted) return Promise.reject(onAbort());
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(onAbort());
    signal.addEventListener('abort', abort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export class DeadlineSource implements ChunkSource {
  private readonly next: ChunkSource;
  private readonly deadlineMs: number;
  /** Fetches that missed the deadline (for metrics). */
  expired = 0;

  constructor(options: DeadlineSourceOptions) {
    if (!(options.deadlineMs > 0)) {
      throw new InvalidArgumentError(`deadlineMs must be positive, got ${options.deadlineMs}`);
    }
    this.next = options.next;
    this.deadlineMs = options.deadlineMs;
  }

  fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    return raceDeadline(this.next.fetch(req, signal), this.deadlineMs, () => {
      this.expired++;
      return new DeadlineError(`${describeChunk(req)}: not fetched within ${this.deadlineMs} ms`);
    });
  }

  promote(req: ChunkRequest): void {
    this.next.promote?.(req);
  }
}
