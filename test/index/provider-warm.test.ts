// containerd prepares an image's layers one at a time, and each Prepare warms the layers above it: a layer's
// index is resolved once for the whole sequence, not loaded from the store again by every Prepare below it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { MediaType, type ImageManifest } from '../../src/image/manifest.js';
import { parseReference } from '../../src/image/reference.js';
import { IndexProvider } from '../../src/index/provider.js';
import { IndexStore } from '../../src/index/index-store.js';
import { createLogger } from '../../src/log.js';
import type { RegistryClient, ResolvedImage } from '../../src/registry/client.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from './layer-fixture.js';

class CountingStore extends IndexStore {
  gets = 0;
  override get(layerDigest: Digest, key: string, signal?: AbortSignal): Promise<LayerIndex | undefined> {
    this.gets++;
    return super.get(layerDigest, key, signal);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('IndexProvider.warm', () => {
  it('resolves each layer once across the Prepare calls of an image', async () => {
    const tars = [1, 2, 3].map((seed) => makeLayer({ smallFiles: 20, seed }).tar);
    const blobs = tars.map((t) => gzipSync(t));
    const byDigest = new Map(blobs.map((b) => [sha256(b), b]));
    let streams = 0;
    const registry = {
      blobReader: (_ref: unknown, digest: Digest) => {
        const r = new MemoryBlobReader(byDigest.get(digest)!);
        const stream = r.stream.bind(r);
        r.stream = () => {
          streams++;
          return stream();
        };
        return r;
      },
    } as unknown as RegistryClient;
    const dir = mkdtempSync(join(tmpdir(), 'ferry-warm-'));
    dirs.push(dir);
    const store = new CountingStore({ dir });
    const provider = new IndexProvider({
      store,
      registry,
      log: createLogger({ level: 'silent' }),
      chunkSizeBytes: 1 << 20,
      spanBytes: 1 << 20,
    });
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: sha256('{}'), size: 2 },
      layers: blobs.map((b) => ({ mediaType: MediaType.ociLayerGzip, digest: sha256(b), size: b.length })),
    } as ImageManifest;
    const image: ResolvedImage = {
      ref: parseReference('registry.test/app:1'),
      manifestDigest: sha256('manifest'),
      manifest,
      manifestBytes: Buffer.from('{}'),
      mediaType: MediaType.ociManifest,
    };
    const diffIds = tars.map((t) => sha256(t));
    const layers = { diffIds, chainIds: diffIds };
    const digests = manifest.layers.map((l) => l.digest);

    // The first Prepare warms every layer and takes its own; the rest finish in the background.
    provider.warm(image, layers, digests);
    const first = await provider.forImage(image, { layers, only: digests });
    expect(streams).toBe(3);
    const getsAfterFirst = store.gets;
    // Each later Prepare warms the layers above it again, then asks for its own: all already resolved.
    for (let i = 1; i < digests.length; i++) {
      provider.warm(image, layers, digests.slice(i));
      const [mine] = await provider.forImage(image, { layers, only: [digests[i]!] });
      expect(mine?.index).toBe(first[i]?.index);
    }
    expect(store.gets).toBe(getsAfterFirst);
    expect(streams).toBe(3);
  });
});
