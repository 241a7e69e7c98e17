// StoreThroughSource: answer from the ChunkStore when it has the chunk; otherwise fetch from `next` and keep
// the bytes, written behind the reader (and served from memory until written). The store is an optimisation: its
// failures are logged and never fail a read.
import type { Logger } from '../log.js';
import type { ChunkStore } from '../chunks/chunk-store.js';
import type { Digest } from '../image/digest.js';
import { chunkOf, describeChunk, type ChunkRequest, type ChunkSource } from './chunk-source.js';

export interface StoreThroughSourceOptions {
  store: ChunkStore;
  next: ChunkSource;
  log: Logger;
}

/** Bytes written behind readers at once; past it a reader waits for its own write (a disk slower than the link). */
const MAX_WRITING_BYTES = 64 << 20;

export class StoreThroughSource implements ChunkSource {
  private readonly store: ChunkStore;
  private readonly next: ChunkSource;
  private readonly log: Logger;
  /** Chunks fetched and not yet in the store: a read in that window must not fetch them again. */
  private readonly writing = new Map<Digest, Buffer>();
  private writingBytes = 0;

  constructor(options: StoreThroughSourceOptions) {
    this.store = options.store;
    this.next = options.next;
    this.log = options.log;
  }

  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    const chunk = chunkOf(req);
    const pending = this.writing.get(chunk.digest);
    if (pending !== undefined) return pending;
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
    if (this.writing.has(chunk.digest)) return bytes; // fetched twice at once (no dedupe above): written once
    this.writing.set(chunk.digest, bytes);
    this.writingBytes += bytes.length;
    const written = this.store
      .put(chunk.digest, bytes)
      .catch((e: unknown) => {
        this.log.warn({ err: e, digest: chunk.digest }, `store write failed for ${describeChunk(req)}`);
      })
      .finally(() => {
        this.writing.delete(chunk.digest);
        this.writingBytes -= bytes.length;
      });
    if (this.writingBytes > MAX_WRITING_BYTES) await written;
    return bytes;
  }

  promote(req: ChunkRequest): void {
    this.next.promote?.(req);
  }
}
