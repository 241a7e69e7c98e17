// The ChunkStore contract: content-addressed chunk bytes by digest, where a miss is `undefined`, never a throw.
// Implementations: memory-chunk-store.ts, disk-chunk-store.ts, tiered-chunk-store.ts.
import type { Digest } from '../image/digest.js';

export interface ChunkStoreStats {
  hits: number;
  misses: number;
  /** Bytes returned by hits (what this tier served). */
  hitBytes: number;
  /** Bytes currently held. */
  bytes: number;
  entries: number;
  evictions: number;
  puts: number;
  /** Writes dropped or corrupt reads discarded. */
  failures: number;
}

export interface ChunkStore {
  /** The chunk's bytes, or undefined when absent (or found corrupt). Never throws for a miss. */
  get(d: Digest, signal?: AbortSignal): Promise<Buffer | undefined>;
  has(d: Digest): boolean | Promise<boolean>;
  /**
   * Bytes [offset, offset + length) of the chunk when this store can serve them without reading (or hashing)
   * the whole chunk; undefined when it is absent or only the whole chunk could be served: callers then get().
   */
  getRange?(d: Digest, offset: number, length: number, signal?: AbortSignal): Promise<Buffer | undefined>;
  /** Stores verified bytes. Never throws for storage trouble (disk full, read-only): the write is dropped. */
  put(d: Digest, bytes: Buffer, signal?: AbortSignal): Promise<void>;
  stats(): ChunkStoreStats;
  /** Stats per physical tier ('memory', 'disk'), for per-tier metrics. */
  tiers(): Readonly<Record<string, ChunkStoreStats>>;
}

export function emptyStats(): ChunkStoreStats {
  return { hits: 0, misses: 0, hitBytes: 0, bytes: 0, entries: 0, evictions: 0, puts: 0, failures: 0 };
}

export function addStats(a: ChunkStoreStats, b: ChunkStoreStats): ChunkStoreStats {
  return {
    hits: a.hits + b.hits,
    misses: a.misses + b.misses,
    hitBytes: a.hitBytes + b.hitBytes,
    bytes: a.bytes + b.bytes,
    entries: a.entries + b.entries,
    evictions: a.evictions + b.evictions,
    puts: a.puts + b.puts,
    failures: a.failures + b.failures,
  };
}

/** ArrayBuffers whose holder owns them whole (a decode worker's transferred reply): nobody else writes them. */
const exclusive = new WeakSet<ArrayBufferLike>();

/** Marks `bytes`' buffer as owned by whoever holds `bytes` alone (see ownedCopy). */
export function markExclusive(bytes: Uint8Array): void {
  exclusive.add(bytes.buffer);
}

/**
 * A standalone copy when `bytes` is a view into a larger buffer, so caching it does not pin the parent, and
 * whenever another owner may write that buffer later (a decoder's reused output, a builder's borrowed piece):
 * kept as it is only when the view is its whole buffer, or fills at least 7/8 of a buffer marked exclusive (a
 * decoded chunk comes from its decode worker as a view of zlib's output with a little slack past it, and copying
 * each one costs more than the slack).
 */
export function ownedCopy(bytes: Buffer): Buffer {
  const whole = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length;
  if (whole || (exclusive.has(bytes.buffer) && bytes.length >= bytes.buffer.byteLength * 0.875)) return bytes;
  const copy = Buffer.allocUnsafeSlow(bytes.length); // not from the shared pool, which would pin 8 KiB slabs
  bytes.copy(copy);
  return copy;
}
