// The random-access reader primitive: one chunk from the origin blob (range read → decode → verify).
import { IntegrityError, InvalidArgumentError } from '../errors.js';
import { sha256 } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { decodeChunk } from '../codec/decode-chunk.js';
import type { BlobReader } from '../image/blob-reader.js';

/** Fetches, decodes and verifies chunk `chunkIndex` of `index` from `blob`; returns exactly its bytes. */
export async function fetchChunkFromOrigin(
  index: LayerIndex,
  chunkIndex: number,
  blob: BlobReader,
  signal?: AbortSignal,
): Promise<Buffer> {
  const chunk = index.chunks[chunkIndex];
  if (chunk === undefined) {
    throw new InvalidArgumentError(
      `layer ${index.layerDigest}: no chunk ${chunkIndex} (has ${index.chunks.length})`,
    );
  }
  const compressed = await blob.readRange(chunk.compressedStart, chunk.compressedEnd, signal);
  const bytes = decodeChunk(index, chunkIndex, compressed);
  const actual = sha256(bytes);
  if (actual !== chunk.digest) {
    throw new IntegrityError(
      `layer ${index.layerDigest} chunk ${chunkIndex} (${chunk.digest}): decoded bytes hash to ${actual}`,
    );
  }
  return bytes;
}
