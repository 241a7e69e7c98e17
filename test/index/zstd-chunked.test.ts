// zstd:chunked round trip: a layer rewritten by the test writer in containers/storage's layout is still the
// layer for `zstd -d`; Ferry's index from its TOC reads every file back through verified per-frame chunks
// with small Range reads; a TOC that does not match its annotated checksum is an IntegrityError.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FormatError, IntegrityError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { chunksCovering, type Entry, type LayerIndex } from '../../src/image/layer-index.js';
import { decodeZstdSpan } from '../../src/codec/zstd-decode.js';
import {
  buildZstdChunkedIndex,
  zstdChunkedManifestRef,
  type ZstdChunkedManifestRef,
} from '../../src/index/zstd-chunked.js';
import { CHECKSUM_KEY, POSITION_KEY, writeZstdChunked } from '../helpers/zstd-chunked-writer.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from './layer-fixture.js';

const MEDIA = 'application/vnd.oci.image.layer.v1.tar+zstd';
const layer = makeLayer({ smallFiles: 800, seed: 11 });

async function index(blob: MemoryBlobReader, manifest: ZstdChunkedManifestRef): Promise<LayerIndex> {
  return buildZstdChunkedIndex({ layerDigest: blob.digest, mediaType: MEDIA, blob, manifest });
}

async function readFile(idx: LayerIndex, blob: MemoryBlobReader, e: Entry): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const i of chunksCovering(idx.chunks, e.dataOffset!, e.size)) {
    const c = idx.chunks[i]!;
    const span = await blob.readRange(c.compressedStart, c.compressedEnd);
    const bytes = decodeZstdSpan(span, c.skip, c.size, `chunk ${i}`);
    expect(sha256(bytes)).toBe(c.digest);
    const start = e.dataOffset!;
    parts.push(bytes.subarray(Math.max(0, start - c.offset), Math.min(c.size, start + e.size - c.offset)));
  }
  return Buffer.concat(parts);
}

describe.each([
  ['chunked files', { chunkSizeBytes: 256 * 1024 }],
  ['one frame per file (no chunk digests)', { noChunks: true }],
] as const)('zstd:chunked, %s', (_name, opts) => {
  const z = writeZstdChunked(layer.tar, opts);

  it('is still the plain layer for zstd -d', () => {
    const plain = execFileSync('zstd', ['-d', '-q', '-c'], { input: z.blob, maxBuffer: 1 << 30 });
    expect(plain.equals(layer.tar)).toBe(true);
  });

  it('maps the TOC to a tree whose files read back exactly through verified frames', async () => {
    const blob = new MemoryBlobReader(z.blob);
    const ref = zstdChunkedManifestRef(z.annotations, 't');
    expect(ref).toBeDefined();
    const idx = await index(blob, ref!);
    expect(blob.rangeCalls).toBe(1);
    expect(idx.format).toBe('zstd-chunked');
    expect(idx.codec).toBe('zstd-frame');
    expect(idx.chunks.every((c) => c.skip === 0)).toBe(true);
    for (const [path, content] of layer.files) {
      const e = idx.entries.find((x) => x.path === path);
      expect(e?.type, path).toBe('file');
      expect(e!.size).toBe(content.length);
      expect((await readFile(idx, blob, e!)).equals(content), path).toBe(true);
    }
    const byPath = new Map(idx.entries.map((e) => [e.path, e]));
    expect(byPath.get('dir5/hard-big')).toMatchObject({ type: 'hardlink', linkTarget: 'big-text.bin' });
    expect(byPath.get('dir6/sym')).toMatchObject({ type: 'symlink', linkTarget: '../big-text.bin' });
    expect(byPath.get('dir1/gone')?.type).toBe('whiteout');
    expect(byPath.get('dir2')?.opaque).toBe(true);
    // A small file costs about its own frame: nothing like the layer.
    const small = idx.entries.find((e) => e.type === 'file' && e.size > 1000 && e.size < 6000)!;
    const before = blob.bytesRead;
    await readFile(idx, blob, small);
    expect(blob.bytesRead - before).toBeLessThan(small.size + 200);
    if ('chunkSizeBytes' in opts) {
      const big = byPath.get('big-random.bin')!;
      expect(chunksCovering(idx.chunks, big.dataOffset!, big.size).length).toBe(
        Math.ceil(big.size / (256 * 1024)),
      );
    }
  });
});

describe('zstd:chunked TOC verification', () => {
  const z = writeZstdChunked(layer.tar, { chunkSizeBytes: 1 << 20 });
  const blob = new MemoryBlobReader(z.blob);
  const ref = zstdChunkedManifestRef(z.annotations, 't')!;

  it('a TOC checksum mismatch is an IntegrityError', async () => {
    const wrong = { ...ref, checksum: sha256(Buffer.from('another toc')) };
    await expect(index(blob, wrong)).rejects.toBeInstanceOf(IntegrityError);
    const flipped = Buffer.from(z.blob);
    flipped[ref.offset + 5]! ^= 1;
    await expect(index(new MemoryBlobReader(flipped), ref)).rejects.toThrow(/TOC checksum is sha256:/);
  });

  it('bad annotations are FormatErrors; other layers have none', () => {
    expect(zstdChunkedManifestRef({}, 't')).toBeUndefined();
    expect(zstdChunkedManifestRef(undefined, 't')).toBeUndefined();
    const bad =
      (position: string): unknown =>
      () =>
        zstdChunkedManifestRef({ [CHECKSUM_KEY]: ref.checksum, [POSITION_KEY]: position }, 't');
    expect(bad('1:2:3')).toThrow(FormatError);
    expect(bad('1:2:3:2')).toThrow(/manifest type/);
    expect(bad('-1:2:3:1')).toThrow(FormatError);
  });

  it('a TOC position outside the blob or a wrong uncompressed length is a FormatError', async () => {
    await expect(index(blob, { ...ref, offset: z.blob.length })).rejects.toBeInstanceOf(FormatError);
    await expect(
      index(blob, { ...ref, uncompressedBytes: ref.uncompressedBytes + 1 }),
    ).rejects.toBeInstanceOf(FormatError);
  });
});
