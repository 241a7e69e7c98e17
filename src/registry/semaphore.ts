// A counting semaphore: bounds concurrent requests per registry host. FIFO, abortable while waiting.
import { AbortedError } from '../errors.js';

export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(options: { permits: number }) {
    if (!Number.isInteger(options.permits) || options.permits < 1) {
      throw new RangeError(`semaphore permits must be a positive integer, got ${options.permits}`);
    }
    this.available = options.permits;
  }

  /** Resolves with a release function once a permit is free; the release is idempotent. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted)
      throw new AbortedError('aborted while waiting for a connection slot', { cause: signal.reason });
    if (this.available > 0) {
      this.available--;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new AbortedError('aborted while waiting for a connection slot', { cause: signal?.reason }));
      };
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return this.releaser();
  }

  get waiting(): number {
    return this.waiters.length;
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      // A permit handed straight to the next waiter never becomes "available" in between.
      if (next !== undefined) next();
      else this.available++;
    };
  }
}
