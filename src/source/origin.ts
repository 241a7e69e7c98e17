// The random-access reader primitive: one chunk from the origin blob (range read → decode → verify), with
// decoding and hashing on the decode pool's worker threads so a cold read never stalls the event loop.
import { FormatError } from '../errors.js';
import type { LayerIndex } from '../image/layer-index.js';
import { chunkJob } from '../codec/chunk-job.js';
import { DecodePool } from '../codec/worker-pool.js';
import { isHandedOff, type BlobReader } from '../image/blob-reader.js';
import { markVerified } from './verified-bytes.js';

let defaultPool: DecodePool | undefined;

/** The pool fetchChunkFromOrigin uses, created on first use with default options. */
export function decodePool(): DecodePool {
  defaultPool ??= new DecodePool();
  return defaultPool;
}

/** Makes `pool` the one fetchChunkFromOrigin uses; the previous one is returned, not closed. */
export function setDecodePool(pool: DecodePool): DecodePool | undefined {
  const previous = defaultPool;
  defaultPool = pool;
  return previous;
}

/** Closes the current pool (its running jobs fail); the next fetch creates a fresh default pool. */
export async function closeDecodePool(): Promise<void> {
  const pool = defaultPool;
  defaultPool = undefined;
  await pool?.close();
}

/** Fetches, decodes and verifies chunk `chunkIndex` of `index` from `blob`; returns exactly its bytes. */
export async function fetchChunkFromOrigin(
  index: LayerIndex,
  chunkIndex: number,
  blob: BlobReader,
  signal?: AbortSignal,
  window?: Promise<Uint8Array>,
): Promise<Buffer> {
  const chunk = index.chunks[chunkIndex];
  const [compressed, w] = await Promise.all([
    chunk === undefined ? undefined : blob.readRange(chunk.compressedStart, chunk.compressedEnd, signal),
    window,
  ]);
  const job = chunkJob(index, chunkIndex, w);
  if (compressed === undefined) throw new FormatError(`layer ${index.layerDigest}: no chunk ${chunkIndex}`);
  // A span the reader handed off is transferred to the decode worker rather than copied (nobody reads it after).
  const options = { handOver: isHandedOff(compressed), ...(signal !== undefined ? { signal } : {}) };
  const bytes = await decodePool().decodeAndVerify(job, compressed, options);
  // decodeAndVerify hashed these bytes against the chunk's digest: VerifySource does not hash them again.
  return markVerified(bytes, job.digest);
}
