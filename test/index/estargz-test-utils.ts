// Shared by the eStargz tests: build an index over a written blob and read files back through it,
// decoding each chunk's gzip-member span with node:zlib directly (independent of src/codec).
import { constants, gunzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { sha256, type Digest } from '../../src/image/digest.js';
import { chunksCovering, type Chunk, type Entry, type LayerIndex } from '../../src/image/layer-index.js';
import { buildEstargzIndex } from '../../src/index/estargz.js';
import {
  writeEstargz,
  type EstargzInputEntry,
  type EstargzWriterOptions,
} from '../helpers/estargz-writer.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';

export const MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** The chunk's bytes: gunzip [compressedStart, compressedEnd), drop `skip`, take `size`, check the digest. */
export function decodeChunkForTest(blob: Buffer, c: Chunk): Buffer {
  const span = blob.subarray(c.compressedStart, c.compressedEnd);
  const out = gunzipSync(span, { finishFlush: constants.Z_SYNC_FLUSH });
  const bytes = out.subarray(c.skip, c.skip + c.size);
  expect(bytes.length).toBe(c.size);
  expect(sha256(bytes)).toBe(c.digest);
  return bytes;
}

export function entryAt(index: LayerIndex, path: string): Entry | undefined {
  return index.entries.find((e) => e.path === path);
}

/** A file's content read through the index (hardlinks followed), every chunk verified. */
export function readViaIndex(index: LayerIndex, blob: Buffer, path: string): Buffer {
  let e = entryAt(index, path);
  if (e?.type === 'hardlink') e = entryAt(index, e.linkTarget ?? '');
  if (!e || e.type !== 'file') throw new Error(`${path} is not a file in the index`);
  if (e.size === 0) return Buffer.alloc(0);
  const start = e.dataOffset ?? -1;
  const parts: Buffer[] = [];
  for (const i of chunksCovering(index.chunks, start, e.size)) {
    const c = index.chunks[i]!;
    const bytes = decodeChunkForTest(blob, c);
    const from = Math.max(start, c.offset) - c.offset;
    const to = Math.min(start + e.size, c.offset + c.size) - c.offset;
    parts.push(bytes.subarray(from, to));
  }
  return Buffer.concat(parts);
}

export interface Built {
  blob: Buffer;
  reader: MemoryBlobReader;
  index: LayerIndex;
  tocDigest: Digest;
  tocOffset: number;
  diffId: Digest;
  tocJson: Buffer;
}

export async function writeAndIndex(
  entries: EstargzInputEntry[],
  opts: EstargzWriterOptions = {},
): Promise<Built> {
  const w = writeEstargz(entries, opts);
  const reader = new MemoryBlobReader(w.blob);
  const index = await buildEstargzIndex({
    layerDigest: reader.digest,
    mediaType: MEDIA_TYPE,
    blob: reader,
    tocDigest: w.tocDigest,
  });
  return { ...w, reader, index };
}

/** Every input file's bytes, read through the index, equal the input; the index invariants hold. */
export function expectRoundTrip(
  b: Pick<Built, 'blob' | 'index' | 'tocOffset'>,
  entries: EstargzInputEntry[],
): void {
  const paths = b.index.entries.map((e) => e.path);
  expect(paths[0]).toBe('');
  expect([...paths].sort()).toEqual(paths);
  expect(new Set(paths).size).toBe(paths.length);
  let prevEnd = 0;
  for (const c of b.index.chunks) {
    expect(c.offset).toBe(prevEnd);
    prevEnd = c.offset + c.size;
    expect(c.compressedEnd).toBeGreaterThan(c.compressedStart);
    expect(c.compressedEnd).toBeLessThanOrEqual(b.tocOffset);
  }
  expect(b.index.uncompressedSize).toBe(prevEnd);
  for (const e of entries) {
    if (e.type !== 'file' || e.path.split('/').pop()!.startsWith('.wh.')) continue;
    const path = e.path.replace(/^(\.?\/)+/, '');
    const want = e.content ?? Buffer.alloc(0);
    const got = readViaIndex(b.index, b.blob, path);
    expect(got.equals(want), `content of ${path}`).toBe(true);
    expect(entryAt(b.index, path)?.digest).toBe(sha256(want));
  }
}
