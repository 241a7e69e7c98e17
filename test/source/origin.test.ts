// fetchChunkFromOrigin: one range read per chunk, decoded and verified on the decode pool; tampering is an
// IntegrityError; originFetcher decodes on the pool it is given, the default pool can be closed.
import { afterAll, describe, expect, it } from 'vitest';
import { DecodePool } from '../../src/codec/worker-pool.js';
import { AbortedError, IntegrityError, InvalidArgumentError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { closeDecodePool, decodePool, fetchChunkFromOrigin, originFetcher } from '../../src/source/origin.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from '../index/layer-fixture.js';

const layer = makeLayer({ smallFiles: 200, seed: 3 });

afterAll(() => closeDecodePool());

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

describe.each([
  ['tar', layer.tar, 'application/vnd.oci.image.layer.v1.tar'],
  ['tar.gz', layer.gz, 'application/vnd.oci.image.layer.v1.tar+gzip'],
] as const)('fetchChunkFromOrigin on %s', (_kind, data, mediaType) => {
  it('returns each chunk with one range read of its compressed span', async () => {
    const blob = new MemoryBlobReader(data);
    const index = await buildIndexFromStream({
      layerDigest: blob.digest,
      mediaType,
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
    const index = await buildIndexFromStream({ layerDigest: blob.digest, mediaType, blob });
    const tampered: LayerIndex = {
      ...index,
      chunks: index.chunks.map((c, i) => (i === 1 ? { ...c, digest: sha256('nope') } : c)),
    };
    const err = await fetchChunkFromOrigin(tampered, 1, blob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(`layer ${index.layerDigest} chunk 1`);
  });
});

describe('fetchChunkFromOrigin and the decode pool', () => {
  it('originFetcher decodes on the pool it is given; closeDecodePool makes the next default fetch start a new one', async () => {
    const blob = new MemoryBlobReader(layer.gz);
    const index = await buildIndexFromStream({ layerDigest: blob.digest, mediaType: GZIP, blob });
    const big = index.chunks.findIndex((c) => c.size >= 256 * 1024);
    const pool = new DecodePool({ workers: 1 });
    const c = index.chunks[big]!;
    const got = await originFetcher(pool)(index, big, blob);
    expect(got.equals(layer.tar.subarray(c.offset, c.offset + c.size))).toBe(true);
    expect(pool.stats()).toMatchObject({ workers: 1, completed: 1 });
    await pool.close();
    await expect(originFetcher(pool)(index, big, blob)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const first = decodePool();
    expect((await fetchChunkFromOrigin(index, big, blob)).equals(got)).toBe(true);
    await closeDecodePool();
    const fresh = decodePool();
    expect(fresh).not.toBe(first);
    expect((await fetchChunkFromOrigin(index, big, blob)).equals(got)).toBe(true);
  });

  it('passes its AbortSignal to the read and the decode', async () => {
    const blob = new MemoryBlobReader(layer.gz);
    const index = await buildIndexFromStream({ layerDigest: blob.digest, mediaType: GZIP, blob });
    const ac = new AbortController();
    ac.abort();
    await expect(fetchChunkFromOrigin(index, 0, blob, ac.signal)).rejects.toBeInstanceOf(AbortedError);
  });
});
