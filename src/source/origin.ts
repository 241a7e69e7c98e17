// The random-access reader primitive: one chunk from the origin blob (range read → decode → verify), with
// decoding and hashing on the decode pool's worker threads so a cold read never stalls the event loop.
import { markExclusive } from '../chunks/chunk-store.js';
import { FormatError } from '../errors.js';
import type { LayerIndex } from '../image/layer-index.js';
import { chunkJob } from '../codec/chunk-job.js';
import { DecodePool } from '../codec/worker-pool.js';
import { isHandedOff, type BlobReader } from '../image/blob-reader.js';
import type { ChunkPriority } from './chunk-source.js';
import type { OriginFetch } from './origin-source.js';
import { markVerified } from './verified-bytes.js';

let defaultPool: DecodePool | undefined;

/** The pool fetchChunkFromOrigin uses (tools and tests), created on first use with default options. */
export function decodePool(): DecodePool {
  defaultPool ??= new DecodePool();
  return defaultPool;
}

/** Closes the default pool (its running jobs fail); the next fetchChunkFromOrigin creates a fresh one. */
export async function closeDecodePool(): Promise<void> {
  const pool = defaultPool;
  defaultPool = undefined;
  await pool?.close();
}

/** The origin fetch of a node whose decoding runs on `pool` (its owner closes it). */
export function originFetcher(pool: DecodePool): OriginFetch {
  return (index, chunkIndex, blob, signal, window, priority) =>
    fetchChunk(pool, index, chunkIndex, blob, signal, window, priority);
}

/** Fetches, decodes and verifies chunk `chunkIndex` of `index` from `blob` on the default pool. */
export function fetchChunkFromOrigin(
  index: LayerIndex,
  chunkIndex: number,
  blob: BlobReader,
  signal?: AbortSignal,
  window?: Promise<Uint8Array>,
): Promise<Buffer> {
  return fetchChunk(decodePool(), index, chunkIndex, blob, signal, window);
}

/** Fetches, decodes and verifies one chunk on `pool`; returns exactly its bytes. */
async function fetchChunk(
  pool: DecodePool,
  index: LayerIndex,
  chunkIndex: number,
  blob: BlobReader,
  signal?: AbortSignal,
  window?: Promise<Uint8Array>,
  priority: ChunkPriority = 'demand',
): Promise<Buffer> {
  const chunk = index.chunks[chunkIndex];
  const [compressed, w] = await Promise.all([
    chunk === undefined ? undefined : blob.readRange(chunk.compressedStart, chunk.compressedEnd, signal),
    window,
  ]);
  const job = chunkJob(index, chunkIndex, w);
  if (compressed === undefined) throw new FormatError(`layer ${index.layerDigest}: no chunk ${chunkIndex}`);
  // A span the reader handed off is transferred to the decode worker rather than copied (nobody reads it after).
  const options = {
    handOver: isHandedOff(compressed),
    priority,
    ...(signal !== undefined ? { signal } : {}),
  };
  const bytes = await pool.decodeAndVerify(job, compressed, options);
  // Decoded bytes are a buffer the worker gave up (transferred) or made inline: this caller's alone, so the
  // memory tier may keep them without a copy. Not so an uncompressed chunk, a view of the Range body.
  if (bytes.buffer !== compressed.buffer) markExclusive(bytes);
  // decodeAndVerify hashed these bytes against the chunk's digest: VerifySource does not hash them again.
  return markVerified(bytes, job.digest);
}
