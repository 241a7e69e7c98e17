// ReadAheadBudget: the global memory bound on read-ahead — bytes of chunks being fetched ahead of readers,
// summed over every file of every layer that shares it. Pure bookkeeping; no I/O.
import { InvalidArgumentError } from '../errors.js';

export class ReadAheadBudget {
  readonly maxBytes: number;
  private used = 0;
  /** Fetches refused because the bound was reached. */
  refused = 0;
  /** Highest `inUseBytes` seen. */
  peakBytes = 0;

  constructor(options: { maxBytes: number }) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0) {
      throw new InvalidArgumentError(`read-ahead memory bound must be ≥ 0 bytes, got ${options.maxBytes}`);
    }
    this.maxBytes = options.maxBytes;
  }

  get inUseBytes(): number {
    return this.used;
  }

  /** Reserves `bytes` if they fit under the bound; false (and nothing reserved) otherwise. */
  tryAcquire(bytes: number): boolean {
    if (this.used + bytes > this.maxBytes) {
      this.refused++;
      return false;
    }
    this.used += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.used);
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}
