// A chunk's decode job as plain data — codec, restart point with its window, skip, size, expected digest —
// derived from the layer index so a worker thread can decode and verify it without the whole index.
import { createHash } from 'node:crypto';
import { FormatError, IntegrityError, InvalidArgumentError } from '../errors.js';
import { digestAlgorithm, type Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { decodeJob } from './decode-chunk.js';

/** Where inflate starts: gzip framing at a member header, or raw deflate primed with `bits` and `window`. */
export interface InflateStart {
  readonly gzip: boolean;
  /** 0–7 bits of the span's first byte that belong to the first deflate block. */
  readonly bits: number;
  /** The 32 KiB (or less, early in a stream) of output before the restart point; undefined at a member. */
  readonly window: Uint8Array | undefined;
}

interface JobBase {
  /** `layer <digest> chunk <n>`, for error messages. */
  readonly label: string;
  /** Decoded bytes to discard before the chunk's first byte. */
  readonly skip: number;
  readonly size: number;
  readonly digest: Digest;
}

export type ChunkJob =
  | (JobBase & { readonly codec: 'identity' })
  | (JobBase & { readonly codec: 'zstd-frame' })
  | (JobBase & { readonly codec: 'zran' | 'gzip-member'; readonly start: InflateStart });

/**
 * The job for chunk `chunkIndex`; the window is the index's own (copy it before transferring it), or `window` for
 * an index whose windows are fetched apart (LayerIndex.windowsBlob).
 */
export function chunkJob(index: LayerIndex, chunkIndex: number, window?: Uint8Array): ChunkJob {
  const chunk = index.chunks[chunkIndex];
  if (chunk === undefined) {
    throw new InvalidArgumentError(
      `layer ${index.layerDigest}: no chunk ${chunkIndex} (has ${index.chunks.length})`,
    );
  }
  const base = {
    label: `layer ${index.layerDigest} chunk ${chunkIndex}`,
    skip: chunk.skip,
    size: chunk.size,
    digest: chunk.digest,
  };
  if (index.codec === 'identity' || index.codec === 'zstd-frame') return { ...base, codec: index.codec };
  if (index.codec === 'gzip-member') {
    return { ...base, codec: 'gzip-member', start: { gzip: true, bits: 0, window: undefined } };
  }
  const cp = index.checkpoints[chunk.checkpoint];
  if (cp === undefined) {
    throw new FormatError(`${base.label}: checkpoint ${chunk.checkpoint} missing from index`);
  }
  const own = index.windows[cp.window] ?? window;
  if (!cp.memberStart && own === undefined) {
    throw new FormatError(`${base.label}: window ${cp.window} missing`);
  }
  const spanStart = cp.memberStart || cp.bits === 0 ? cp.compressedOffset : cp.compressedOffset - 1;
  if (spanStart !== chunk.compressedStart) {
    throw new FormatError(
      `${base.label}: span starts at ${chunk.compressedStart}, checkpoint at ${spanStart}`,
    );
  }
  return { ...base, codec: 'zran', start: { gzip: cp.memberStart, bits: cp.bits, window: own } };
}

/** The window chunk `chunkIndex` needs that the index does not hold inline (see windowsBlob), if any. */
export function lazyWindowOf(index: LayerIndex, chunkIndex: number): number | undefined {
  if (index.codec !== 'zran' || index.windowsBlob === undefined) return undefined;
  const cp = index.checkpoints[index.chunks[chunkIndex]?.checkpoint ?? -1];
  if (cp === undefined || cp.memberStart || index.windows[cp.window] !== undefined) return undefined;
  return cp.window;
}

/** Decodes the job's span and checks the bytes against its digest: only verified bytes come back. */
export function decodeAndVerify(job: ChunkJob, compressed: Uint8Array): Buffer {
  const bytes = decodeJob(job, compressed);
  verifyChunk(job, bytes);
  return bytes;
}

export function verifyChunk(job: ChunkJob, bytes: Uint8Array): void {
  const alg = digestAlgorithm(job.digest);
  const actual = `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
  if (actual !== job.digest) {
    throw new IntegrityError(`${job.label} (${job.digest}): decoded bytes hash to ${actual}`);
  }
}
