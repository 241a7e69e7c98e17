// Windows kept apart from the index (published indexes): every chunk decodes the same as with inline windows; a
// window comes from the store, from the cached chunk that ends where it ends, or from one Range read of the
// windows blob; a window that is not what the index says is an IntegrityError, never a wrong chunk.
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { sha256, type Digest } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { splitWindows } from '../../src/index/publish.js';
import { closeDecodePool, fetchChunkFromOrigin } from '../../src/source/origin.js';
import { OriginSource } from '../../src/source/origin-source.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from '../index/layer-fixture.js';

const layer = makeLayer({ smallFiles: 300, seed: 11 });
afterAll(() => closeDecodePool());

async function lazyIndex(): Promise<{ full: LayerIndex; lazy: LayerIndex; windows: Buffer }> {
  const full = await buildIndexFromStream({
    layerDigest: sha256(layer.gz),
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    blob: new MemoryBlobReader(layer.gz),
    chunkSizeBytes: 128 << 10,
  });
  const split = splitWindows(full)!;
  const lazy: LayerIndex = {
    ...full,
    windows: [],
    windowsBlob: { digest: sha256(split.blob), size: split.blob.length, refs: split.refs },
  };
  return { full, lazy, windows: split.blob };
}

describe('windows apart from the index', () => {
  it('decode every chunk exactly, and a window crosses the link at most once', async () => {
    const { full, lazy, windows } = await lazyIndex();
    expect(full.windows.length).toBeGreaterThan(3);
    const store = new MemoryChunkStore({ maxBytes: 64 << 20 });
    const others = new Map<Digest, Buffer>([[lazy.windowsBlob!.digest, windows]]);
    const origin = new OriginSource({
      blobFor: () => new MemoryBlobReader(layer.gz, others),
      fetch: fetchChunkFromOrigin,
      store,
    });
    // Every other chunk first (no predecessor cached), then the rest (each predecessor now is).
    const order = [...full.chunks.keys()].sort((a, b) => (a % 2) - (b % 2) || a - b);
    for (const i of order) {
      const c = full.chunks[i]!;
      const got = await origin.fetch({ index: lazy, chunk: i, priority: 'demand' });
      expect(got.equals(layer.tar.subarray(c.offset, c.offset + c.size))).toBe(true);
      await store.put(c.digest, got);
    }
    const s = origin.windowStats();
    expect(s.fetched).toBeGreaterThan(0);
    expect(s.fromChunk).toBeGreaterThan(0); // later chunks took the window from the cached chunk before them
    expect(s.fetched + s.fromChunk + s.fromStore).toBeLessThanOrEqual(full.chunks.length);
    expect(s.fetchedBytes).toBeLessThan(windows.length);
  });

  it('a window that is not what the index names is an IntegrityError', async () => {
    const { lazy, windows } = await lazyIndex();
    const bad = Buffer.from(windows);
    for (const r of lazy.windowsBlob!.refs) if (r.length > 4) bad[r.offset + 2]! ^= 0x40;
    const others = new Map<Digest, Buffer>([[lazy.windowsBlob!.digest, bad]]);
    const origin = new OriginSource({
      blobFor: () => new MemoryBlobReader(layer.gz, others),
      fetch: fetchChunkFromOrigin,
    });
    const needing = lazy.chunks.findIndex(
      (c) => lazy.windowsBlob!.refs[lazy.checkpoints[c.checkpoint]!.window]!.size > 0,
    );
    await expect(origin.fetch({ index: lazy, chunk: needing, priority: 'demand' })).rejects.toMatchObject({
      code: 'INTEGRITY',
    });
  });
});
