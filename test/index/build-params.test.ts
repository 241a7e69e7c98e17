// Built indexes are keyed by the parameters that built them: a node whose chunk size (or span, or pack size)
// changes misses its old builds and builds again; published and TOC keys do not depend on them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { DEFAULT_PACK_SIZE_BYTES } from '../../src/image/layer-index.js';
import { parseReference } from '../../src/image/reference.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { buildTag } from '../../src/index/build-params.js';
import type { LayerContext } from '../../src/index/index-source.js';
import { IndexStore } from '../../src/index/index-store.js';
import { LocalIndexSource } from '../../src/index/source-local.js';
import { storeKey } from '../../src/index/trust.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from './layer-fixture.js';

const MiB = 1024 * 1024;
const params = { chunkSizeBytes: MiB, spanBytes: 2 * MiB };

describe('build parameters', () => {
  it('tag the parameters as a whole: any change changes the tag, key order and code defaults do not', () => {
    const tag = buildTag(params);
    expect(tag).toMatch(/^[a-f0-9]{16}$/);
    expect(buildTag({ spanBytes: 2 * MiB, chunkSizeBytes: MiB })).toBe(tag);
    expect(buildTag({ ...params, packSizeBytes: DEFAULT_PACK_SIZE_BYTES })).toBe(tag);
    expect(buildTag({ ...params, chunkSizeBytes: MiB / 2 })).not.toBe(tag);
    expect(buildTag({ ...params, spanBytes: 4 * MiB })).not.toBe(tag);
    expect(buildTag({ ...params, packSizeBytes: 2 * DEFAULT_PACK_SIZE_BYTES })).not.toBe(tag);
  });

  it('a changed chunk size misses the index built with the old one; published keys stay as they are', async () => {
    const layer = makeLayer({ smallFiles: 50, seed: 3 });
    const blob = new MemoryBlobReader(layer.gz);
    const index = await buildIndexFromStream({
      layerDigest: blob.digest,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob,
      ...params,
    });
    const diffId = sha256('diff');
    const dir = join(mkdtempSync(join(tmpdir(), 'ferry-params-')), 'indexes');
    const store = new IndexStore({ dir });
    await store.put(index, storeKey({ kind: 'built', diffId }, buildTag(params)));
    const ctx: LayerContext = {
      ref: parseReference('example.com/a:1'),
      layer: { mediaType: index.mediaType, digest: index.layerDigest, size: index.compressedSize },
      diffId,
      trustedBlobs: () => Promise.resolve(new Map()),
    };
    const same = await new LocalIndexSource(store, buildTag(params)).find(ctx);
    expect(same?.index.chunks.length).toBe(index.chunks.length);
    const changed = new LocalIndexSource(store, buildTag({ ...params, chunkSizeBytes: MiB / 2 }));
    expect(await changed.find(ctx)).toBeUndefined();
    const toc = { kind: 'toc', tocDigest: sha256('toc') } as const;
    expect(storeKey(toc, buildTag(params))).toBe(storeKey(toc, buildTag({ ...params, spanBytes: 4 * MiB })));
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });
});
