// ChunkService: one source over the node's store and decode pool; blobs read from the repository an image
// registered (an index from its own image's), the other repositories holding a blob tried when that one gives
// wrong bytes or fails, peers asked first and served what is shared, tiers counted.
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { DecodePool } from '../../src/codec/worker-pool.js';
import type { Digest } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { parseReference, type ImageReference } from '../../src/image/reference.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { silentLogger } from '../../src/log.js';
import type { ChunkSource } from '../../src/source/chunk-source.js';
import { ChunkService, type ChunkPeers } from '../../src/source/chunk-service.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from '../index/layer-fixture.js';

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const layer = makeLayer({ smallFiles: 50, seed: 5 });
const pool = new DecodePool({ workers: 1 });
afterAll(() => pool.close());

function setup(peers?: ChunkPeers) {
  const blob = new MemoryBlobReader(layer.gz);
  const asked: string[] = [];
  const registry = {
    blobReader: (ref: ImageReference, digest: Digest) => {
      asked.push(`${ref.toString()} ${digest}`);
      return blob;
    },
  };
  const store = new MemoryChunkStore({ maxBytes: 64 << 20 });
  const service = new ChunkService({ store, registry, pool, concurrency: 2, log: silentLogger(), peers });
  return { blob, asked, service, store };
}

async function indexOf(blob: MemoryBlobReader): Promise<LayerIndex> {
  return buildIndexFromStream({ layerDigest: blob.digest, mediaType: GZIP, blob });
}

describe('ChunkService', () => {
  it('refuses a layer no image registered, then reads it from the registered repository into the store', async () => {
    const { blob, asked, service, store } = setup();
    const index = await indexOf(blob);
    await expect(service.source.fetch({ index, chunk: 0, priority: 'demand' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    service.register(parseReference('reg.test/a:1'), [index.layerDigest]);
    service.register(parseReference('reg.test/b:1'), [index.layerDigest]); // first registered wins
    const c = index.chunks[0]!;
    const got = await service.source.fetch({ index, chunk: 0, priority: 'demand' });
    expect(got.equals(layer.tar.subarray(c.offset, c.offset + c.size))).toBe(true);
    expect(asked).toEqual([`reg.test/a:1 ${index.layerDigest}`]);
    expect(store.has(c.digest)).toBe(true);
    expect(service.stats().origin).toEqual({ chunks: 1, bytes: c.size });
    expect(service.stats().peer).toBeUndefined();
  });

  it('reads a registered index from its own image, whatever other image named the digest first', async () => {
    const { blob, asked, service } = setup();
    const index = await indexOf(blob);
    service.register(parseReference('reg.test/a:1'), [index.layerDigest]);
    service.register(parseReference('reg.test/b:1'), [index]);
    await service.source.fetch({ index, chunk: 1, priority: 'demand' });
    expect(asked).toEqual([`reg.test/b:1 ${index.layerDigest}`]);
  });

  it('tries the other repositories holding a blob when its own gives wrong bytes, and fails when none is right', async () => {
    const honest = new MemoryBlobReader(layer.gz);
    const flipped = Buffer.from(layer.gz);
    for (let at = 0; at < flipped.length; at += 4096) flipped[at]! ^= 0x40;
    const liar = new MemoryBlobReader(flipped);
    const asked: string[] = [];
    const registry = {
      blobReader: (ref: ImageReference) => {
        asked.push(ref.repository);
        return ref.repository === 'evil/app' ? liar : honest;
      },
    };
    const store = new MemoryChunkStore({ maxBytes: 64 << 20 });
    const service = new ChunkService({ store, registry, pool, concurrency: 2, log: silentLogger() });
    const index = await indexOf(honest);
    // The evil image mounted the shared index last: its repository is asked first.
    service.register(parseReference('reg.test/victim/app:1'), [index]);
    service.register(parseReference('evil.test/evil/app:1'), [index]);
    const c = index.chunks[1]!;
    const got = await service.source.fetch({ index, chunk: 1, priority: 'demand' });
    expect(got.equals(layer.tar.subarray(c.offset, c.offset + c.size))).toBe(true);
    expect(asked).toEqual(['evil/app', 'victim/app']);

    const alone = new ChunkService({
      store: new MemoryChunkStore({ maxBytes: 64 << 20 }),
      registry,
      pool,
      concurrency: 2,
      log: silentLogger(),
    });
    alone.register(parseReference('evil.test/evil/app:1'), [index]);
    await expect(alone.source.fetch({ index, chunk: 2, priority: 'demand' })).rejects.toMatchObject({
      code: 'INTEGRITY',
    });
  });

  it('asks peers first, shares what it is told to, and reports their registry counts as origin', async () => {
    const shared: LayerIndex[][] = [];
    const peers: ChunkPeers = {
      wrapOrigin: (origin: ChunkSource) => origin,
      register: (indexes) => {
        shared.push([...indexes]);
        return () => shared.splice(0);
      },
      stats: () => ({ peer: { chunks: 3, bytes: 30 }, registry: { chunks: 2, bytes: 20 } }),
    };
    const { blob, service } = setup(peers);
    const index = await indexOf(blob);
    service.register(parseReference('reg.test/a:1'), [index]);
    const unshare = service.share([index]);
    expect(shared).toEqual([[index]]);
    await service.source.fetch({ index, chunk: 0, priority: 'demand' });
    // The peer-first source counts what it took from the registry: the service reports the peers' counters.
    expect(service.stats().peer).toEqual({ chunks: 3, bytes: 30 });
    expect(service.stats().origin).toEqual({ chunks: 2, bytes: 20 });
    unshare();
    expect(shared).toEqual([]);
  });
});
