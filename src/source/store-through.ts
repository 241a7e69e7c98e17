// StoreThroughSource: answer from the ChunkStore when it has the chunk; otherwise fetch from `next` and keep
// the bytes. The store is an optimisation: its failures are logged and never fail a read.
import type { Logger } from '../log.js';
import type { ChunkStore } from '../chunks/chunk-store.js';
import { chunkOf, describeChunk, type ChunkRequest, type ChunkSource } from './chunk-source.js';

export interface StoreThroughSourceOptions {
  store: ChunkStore;
  next: ChunkSource;
  log: Logger;
}

export class StoreThroughSource implements ChunkSource {
  private readonly store: ChunkStore;
  private readonly next: ChunkSource;
  private readonly log: Logger;

  constructor(options: StoreThroughSourceOptions) {
    this.store = options.store;
    this.next = options.next;
    this.log = options.log;
  }

  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    const chunk = chunkOf(req);
    let cached: Buffer | undefined;
    try {
      cached = await this.store.get(chunk.digest, signal);
    } catch (e) {
      signal?.throwIfAborted();
      this.log.warn(
        { err: e, digest: chunk.digest },
        `store read failed for ${describeChunk(req)}; fetching`,
      );
    }
    if (cached !== undefined) return cached;
    const bytes = await this.next.fetch(req, signal);
    // Kept without holding the reader: a disk write is four pool round trips (open, write, close, rename), which
    // a cold sequential read would otherwise wait out for every chunk. No signal: once fetched, the bytes are worth
    // keeping even if this caller has gone. A memory tier takes them before this returns.
    this.store.put(chunk.digest, bytes).catch((e: unknown) => {
      this.log.warn({ err: e, digest: chunk.digest }, `store write failed for ${describeChunk(req)}`);
    });
    return bytes;
  }

  promote(req: ChunkRequest): void {
    this.next.promote?.(req);
  }
}
