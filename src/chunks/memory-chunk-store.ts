// MemoryChunkStore: a byte-bounded LRU of chunk buffers (the hot tier above the disk store).
import { LRUCache } from 'lru-cache';
import type { Digest } from '../image/digest.js';
import { InvalidArgumentError } from '../errors.js';
import { emptyStats, ownedCopy, type ChunkStore, type ChunkStoreStats } from './chunk-store.js';

export interface MemoryChunkStoreOptions {
  maxBytes: number;
}

export class MemoryChunkStore implements ChunkStore {
  private readonly lru: LRUCache<Digest, Buffer>;
  private readonly counters = emptyStats();

  constructor(options: MemoryChunkStoreOptions) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes <= 0) {
      throw new InvalidArgumentError(
        `memory chunk store maxBytes must be a positive integer, got ${options.maxBytes}`,
      );
    }
    this.lru = new LRUCache<Digest, Buffer>({
      maxSize: options.maxBytes,
      // What a kept chunk pins: its whole buffer (ownedCopy keeps a view that fills most of one).
      sizeCalculation: (b) => Math.max(1, b.buffer.byteLength),
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.counters.evictions++;
      },
    });
  }

  get(d: Digest): Promise<Buffer | undefined> {
    const b = this.lru.get(d);
    if (b === undefined) this.counters.misses++;
    else {
      this.counters.hits++;
      this.counters.hitBytes += b.length;
    }
    return Promise.resolve(b);
  }

  /** A view into the held buffer: held chunks are never written to. */
  getRange(d: Digest, offset: number, length: number): Promise<Buffer | undefined> {
    const b = this.lru.get(d);
    if (b === undefined || offset < 0 || length < 0 || offset + length > b.length)
      return Promise.resolve(undefined);
    this.counters.hits++;
    this.counters.hitBytes += length;
    return Promise.resolve(b.subarray(offset, offset + length));
  }

  has(d: Digest): boolean {
    return this.lru.has(d);
  }

  put(d: Digest, bytes: Buffer): Promise<void> {
    this.counters.puts++;
    if (!this.lru.has(d)) this.lru.set(d, ownedCopy(bytes));
    return Promise.resolve();
  }

  stats(): ChunkStoreStats {
    return { ...this.counters, bytes: this.lru.calculatedSize, entries: this.lru.size };
  }

  tiers(): Readonly<Record<string, ChunkStoreStats>> {
    return { memory: this.stats() };
  }
}
