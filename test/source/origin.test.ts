// fetchChunkFromOrigin: one range read per chunk, decoded and verified; tampering is an IntegrityError.
import { describe, expect, it } from 'vitest';
import { IntegrityError, InvalidArgumentError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { fetchChunkFromOrigin } from '../../src/source/origin.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from '../index/layer-fixture.js';

const layer = makeLayer({ smallFiles: 200, seed: 3 });

describe.each([
  ['tar', layer.tar],
  ['tar.gz', layer.gz],
] as const)('fetchChunkFromOrigin on %s', (_kind, data) => {
  it('returns each chunk with one range read of its compressed span', async () => {
    const blob = new MemoryBlobReader(data);
    const index = await buildIndexFromStream({
      layerDigest: blob.digest,
      mediaType: 'x',
      blob,
      spanBytes: 256 * 1024,
    });
    for (let i = 0; i < index.chunks.length; i++) {
      const c = index.chunks[i]!;
      const before = blob.rangeCalls;
      const got = await fetchChunkFromOrigin(index, i, blob);
      expect(blob.rangeCalls).toBe(before + 1);
      expect(got.equals(layer.tar.subarray(c.offset, c.offset + c.size))).toBe(true);
    }
    await expect(fetchChunkFromOrigin(index, index.chunks.length, blob)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });

  it('names layer and chunk when bytes do not match the chunk digest', async () => {
    const blob = new MemoryBlobReader(data);
    const index = await buildIndexFromStream({ layerDigest: blob.digest, mediaType: 'x', blob });
    const tampered: LayerIndex = {
      ...index,
      chunks: index.chunks.map((c, i) => (i === 1 ? { ...c, digest: sha256('nope') } : c)),
    };
    const err = await fetchChunkFromOrigin(tampered, 1, blob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(`layer ${index.layerDigest} chunk 1`);
  });
});
