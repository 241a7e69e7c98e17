// The one-pass index builder on generated tar and tar.gz layers: every file reads back exactly through its
// chunks (fetchChunkFromOrigin over an in-memory blob); digests, chunk policy, layer semantics, failures.
import { describe, expect, it } from 'vitest';
import { FerryError, FormatError, IntegrityError, isFerryError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import {
  DEFAULT_PACK_SIZE_BYTES,
  chunksCovering,
  type Entry,
  type LayerIndex,
} from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { fetchChunkFromOrigin } from '../../src/source/origin.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from './layer-fixture.js';

const CHUNK = 1024 * 1024;
const SPAN = 512 * 1024;
const layer = makeLayer({ smallFiles: 2500, seed: 42 });

async function build(
  data: Buffer,
  extra: { onChunk?: (i: number, b: Buffer) => void } = {},
): Promise<LayerIndex> {
  const blob = new MemoryBlobReader(data);
  return buildIndexFromStream({
    layerDigest: blob.digest,
    mediaType: `application/vnd.oci.image.layer.v1.tar${data[0] === 0x1f ? '+gzip' : ''}`,
    blob,
    spanBytes: SPAN,
    ...extra,
  });
}

async function readFile(
  index: LayerIndex,
  blob: MemoryBlobReader,
  e: Entry,
  cache: Map<number, Buffer>,
): Promise<Buffer> {
  const start = e.dataOffset!;
  const parts: Buffer[] = [];
  for (const i of chunksCovering(index.chunks, start, e.size)) {
    let bytes = cache.get(i);
    if (bytes === undefined) {
      bytes = await fetchChunkFromOrigin(index, i, blob);
      cache.set(i, bytes);
    }
    const c = index.chunks[i]!;
    parts.push(bytes.subarray(Math.max(0, start - c.offset), Math.min(c.size, start + e.size - c.offset)));
  }
  return Buffer.concat(parts);
}

describe.each([
  ['tar', layer.tar],
  ['tar.gz', layer.gz],
] as const)('buildIndexFromStream on %s', (kind, data) => {
  it('reads every file back exactly through its chunks', async () => {
    const chunkBytes = new Map<number, Buffer>();
    const index = await build(data, { onChunk: (i, b) => chunkBytes.set(i, Buffer.from(b)) });
    expect(index.format).toBe(kind === 'tar' ? 'tar' : 'gzip');
    expect(index.codec).toBe(kind === 'tar' ? 'identity' : 'zran');
    expect(index.uncompressedSize).toBe(layer.tar.length);
    expect(index.compressedSize).toBe(data.length);
    const blob = new MemoryBlobReader(data);
    const byPath = new Map(index.entries.map((e) => [e.path, e]));
    const cache = new Map<number, Buffer>();
    for (const [path, content] of layer.files) {
      const e = byPath.get(path);
      expect(e, path).toBeDefined();
      expect(e!.type).toBe('file');
      expect(e!.size).toBe(content.length);
      expect(e!.digest).toBe(sha256(content));
      const got = await readFile(index, blob, e!, cache);
      expect(got.equals(content), path).toBe(true);
    }
    // Every chunk is some file's, except one that holds only the earlier copy of the duplicated path.
    expect(cache.size).toBeGreaterThanOrEqual(index.chunks.length - 1);
    for (const [i, b] of chunkBytes) {
      const read = cache.get(i);
      if (read !== undefined) expect(b.equals(read)).toBe(true); // the unread one: the overwritten copy's
    }
    if (kind === 'tar.gz') {
      expect(index.checkpoints.some((c) => c.bits !== 0)).toBe(true);
      const spans = index.chunks.map((c) => c.compressedEnd - c.compressedStart);
      expect(Math.max(...spans)).toBeLessThan(data.length);
    }
  });

  it('follows the chunking policy: sorted, disjoint, big files aligned and split', async () => {
    const index = await build(data);
    for (let i = 1; i < index.chunks.length; i++) {
      const a = index.chunks[i - 1]!;
      expect(index.chunks[i]!.offset).toBeGreaterThanOrEqual(a.offset + a.size);
    }
    for (const c of index.chunks) expect(c.size).toBeLessThanOrEqual(CHUNK);
    const byPath = new Map(index.entries.map((e) => [e.path, e]));
    for (const name of ['big-random.bin', 'big-text.bin', 'quarter.bin']) {
      const e = byPath.get(name)!;
      const covering = chunksCovering(index.chunks, e.dataOffset!, e.size).map((i) => index.chunks[i]!);
      expect(covering.map((c) => c.offset)).toEqual(covering.map((_, k) => e.dataOffset! + k * CHUNK));
      expect(covering.reduce((s, c) => s + c.size, 0)).toBe(e.size);
    }
    const under = byPath.get('just-under-quarter.bin')!;
    expect(chunksCovering(index.chunks, under.dataOffset!, under.size)).toHaveLength(1); // small: never split
    // Small files (~4 KiB each with their headers) are packed into chunks of at most a pack: far fewer
    // chunks than non-empty small files, and none bigger than a pack.
    const small = index.entries.filter((e) => e.type === 'file' && e.size > 0 && e.size < 6000);
    const smallChunks = new Set(small.flatMap((e) => chunksCovering(index.chunks, e.dataOffset!, e.size)));
    expect(smallChunks.size).toBeLessThan(small.length / 20);
    for (const i of smallChunks) expect(index.chunks[i]!.size).toBeLessThanOrEqual(DEFAULT_PACK_SIZE_BYTES);
  });

  it('applies layer semantics: whiteouts, opaque, links, duplicates, implicit root', async () => {
    const index = await build(data);
    const paths = index.entries.map((e) => e.path);
    expect(paths).toEqual([...paths].sort());
    const byPath = new Map(index.entries.map((e) => [e.path, e]));
    expect(byPath.get('')?.type).toBe('dir');
    expect(byPath.get('dir1/gone')).toMatchObject({ type: 'whiteout' });
    expect(paths.some((p) => p.includes('.wh.'))).toBe(false);
    expect(byPath.get('dir2')).toMatchObject({ type: 'dir', opaque: true });
    const hard = [byPath.get('dir5/hard-big')!, byPath.get('big-text.bin')!].find(
      (e) => e.type === 'hardlink',
    )!;
    expect(hard.size).toBe(2_600_000);
    expect(['big-text.bin', 'dir5/hard-big']).toContain(hard.linkTarget);
    expect(byPath.get('dir6/sym')).toMatchObject({ type: 'symlink', linkTarget: '../big-text.bin' });
    expect(paths.filter((p) => p === 'dup.txt')).toHaveLength(1);
    expect(byPath.get('dup.txt')!.digest).toBe(sha256('second, longer version\n'));
    expect(byPath.get('empty-a')).toMatchObject({ size: 0, digest: sha256('') });
  });

  it('rejects a wrong layer digest with IntegrityError', async () => {
    const blob = new MemoryBlobReader(data);
    const p = buildIndexFromStream({ layerDigest: sha256('other'), mediaType: 'x', blob });
    await expect(p).rejects.toBeInstanceOf(IntegrityError);
  });

  it('reports progress and honours an abort signal', async () => {
    const blob = new MemoryBlobReader(data);
    const seen: number[] = [];
    const ac = new AbortController();
    const p = buildIndexFromStream({
      layerDigest: blob.digest,
      mediaType: 'x',
      blob,
      signal: ac.signal,
      onProgress: (n) => {
        seen.push(n);
        if (n > data.length / 2) ac.abort();
      },
    });
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen.length).toBeGreaterThan(2);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
  });
});

describe('buildIndexFromStream failures', () => {
  it('a flipped bit in the gzip is an error, never wrong bytes', async () => {
    for (const at of [20, Math.floor(layer.gz.length / 2), layer.gz.length - 5]) {
      const bad = Buffer.from(layer.gz);
      bad[at] = bad[at]! ^ 0x10;
      const blob = new MemoryBlobReader(bad);
      // Even with the digest of the corrupt bytes, decoding must fail (CRC or deflate error).
      const err = await buildIndexFromStream({ layerDigest: blob.digest, mediaType: 'x', blob }).catch(
        (e: unknown) => e,
      );
      expect(isFerryError(err), String(err)).toBe(true);
      const withTrueDigest = await buildIndexFromStream({
        layerDigest: sha256(layer.gz),
        mediaType: 'x',
        blob,
      }).catch((e: unknown) => e);
      expect(withTrueDigest).toBeInstanceOf(IntegrityError);
    }
  });

  it('a broken zstd frame and garbage are FormatErrors', async () => {
    const z = new MemoryBlobReader(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]));
    await expect(
      buildIndexFromStream({ layerDigest: z.digest, mediaType: 'x', blob: z }),
    ).rejects.toBeInstanceOf(FormatError);
    const g = new MemoryBlobReader(Buffer.alloc(3000, 0x41));
    await expect(
      buildIndexFromStream({ layerDigest: g.digest, mediaType: 'x', blob: g }),
    ).rejects.toBeInstanceOf(FormatError);
    const t = new MemoryBlobReader(layer.tar.subarray(0, 100_000));
    const err = await buildIndexFromStream({ layerDigest: t.digest, mediaType: 'x', blob: t }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FerryError);
  });
});
