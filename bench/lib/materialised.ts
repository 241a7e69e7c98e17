// A layer written out by Ferry's materialiser (src/layer/materialise.ts), for the "materialised" rows beside FUSE
// and native: the index is built from the gzip blob in memory and every chunk comes through the verified source
// stack (decoded from the blob, hashed), as on a node whose cache holds the layer.
import { readFileSync } from 'node:fs';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/manifest.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { materialiseLayer } from '../../src/layer/materialise.js';
import { silentLogger } from '../../src/log.js';
import { composeSource } from '../../src/source/compose.js';
import { closeDecodePool, fetchChunkFromOrigin } from '../../src/source/origin.js';
import { MemoryBlobReader } from '../../test/helpers/memory-blob.js';
import { elapsed, MiB } from './report.js';

export interface Materialised {
  entries: number;
  files: number;
  bytes: number;
  /** Writing the tree (chunks decoded and verified on the way), index build excluded. */
  ms: number;
}

/** Materialises the gzip layer at `gzPath` into `dest` (which must not exist). */
export async function materialiseGzipLayer(gzPath: string, dest: string): Promise<Materialised> {
  const gz = readFileSync(gzPath);
  const blob = new MemoryBlobReader(gz);
  const index = await buildIndexFromStream({
    layerDigest: sha256(gz),
    mediaType: MediaType.ociLayerGzip,
    blob,
  });
  const composed = composeSource({
    store: new MemoryChunkStore({ maxBytes: 64 * MiB }),
    origin: { blobFor: () => blob, fetch: fetchChunkFromOrigin },
    concurrency: 4,
    log: silentLogger(),
  });
  const t0 = performance.now();
  try {
    const r = await materialiseLayer({ tree: LayerTree.fromIndex(index), source: composed.source, dest });
    return { ...r, ms: elapsed(t0) };
  } finally {
    await closeDecodePool();
  }
}
