// TieredChunkStore: a small memory tier over the disk tier; whole-chunk disk hits are promoted into memory,
// parts read from disk are not (the page cache keeps those).
import type { Digest } from '../image/digest.js';
import { addStats, type ChunkStore, type ChunkStoreStats } from './chunk-store.js';

export interface TieredChunkStoreOptions {
  memory: ChunkStore;
  disk: ChunkStore;
}

export class TieredChunkStore implements ChunkStore {
  private readonly memory: ChunkStore;
  private readonly disk: ChunkStore;

  constructor(options: TieredChunkStoreOptions) {
    this.memory = options.memory;
    this.disk = options.disk;
  }

  async get(d: Digest, signal?: AbortSignal): Promise<Buffer | undefined> {
    const hot = await this.memory.get(d, signal);
    if (hot !== undefined) return hot;
    const cold = await this.disk.get(d, signal);
    if (cold !== undefined) await this.memory.put(d, cold);
    return cold;
  }

  async getRange(
    d: Digest,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): Promise<Buffer | undefined> {
    return (
      (await this.memory.getRange?.(d, offset, length, signal)) ??
      (await this.disk.getRange?.(d, offset, length, signal))
    );
  }

  async has(d: Digest): Promise<boolean> {
    return (await this.memory.has(d)) || (await this.disk.has(d));
  }

  async put(d: Digest, bytes: Buffer, signal?: AbortSignal): Promise<void> {
    await Promise.all([this.memory.put(d, bytes, signal), this.disk.put(d, bytes, signal)]);
  }

  /** Hits/misses as seen by callers: a memory miss that the disk answers is a hit. */
  stats(): ChunkStoreStats {
    const m = this.memory.stats();
    const k = this.disk.stats();
    const sum = addStats(m, k);
    return { ...sum, hits: m.hits + k.hits, misses: k.misses, puts: k.puts };
  }

  tiers(): Readonly<Record<string, ChunkStoreStats>> {
    return { ...this.memory.tiers(), ...this.disk.tiers() };
  }
}
