// PartReadSource: a read of part of a chunk the store holds is served by the store's positioned read (no
// whole-chunk read, no re-hash of bytes verified when they were stored); anything else is the whole chunk, sliced.
import type { ChunkStore } from '../chunks/chunk-store.js';
import { chunkOf, type ChunkRequest, type ChunkSource } from './chunk-source.js';

export interface PartReadSourceOptions {
  store: ChunkStore;
  next: ChunkSource;
}

export class PartReadSource implements ChunkSource {
  private readonly store: ChunkStore;
  private readonly next: ChunkSource;
  /** Parts served by the store's positioned reads (for tests and metrics). */
  partsFromStore = 0;

  constructor(options: PartReadSourceOptions) {
    this.store = options.store;
    this.next = options.next;
  }

  fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    return this.next.fetch(req, signal);
  }

  promote(req: ChunkRequest): void {
    this.next.promote?.(req);
  }

  async fetchPart(req: ChunkRequest, from: number, to: number, signal?: AbortSignal): Promise<Buffer> {
    const chunk = chunkOf(req);
    if (from > 0 || to < chunk.size) {
      // A store failure is only a missed shortcut: the whole-chunk path below reports what matters.
      const part = await this.store.getRange?.(chunk.digest, from, to - from, signal).catch(() => {
        signal?.throwIfAborted();
        return undefined;
      });
      if (part !== undefined) {
        this.partsFromStore++;
        return part;
      }
    }
    return (await this.next.fetch(req, signal)).subarray(from, to);
  }
}
