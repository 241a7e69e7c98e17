// The layer bench/fuse-engines.ts mounts three ways: one big file plus a tree of small files in one gzip layer,
// its index, a LayerReader whose chunks all sit in a memory store (the FUSE path is measured, not fetching),
// and GNU tar's extraction of it as the reference every read is checked against.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/manifest.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { LayerReader } from '../../src/layer/layer-reader.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { silentLogger } from '../../src/log.js';
import { composeSource, type ComposedSource } from '../../src/source/compose.js';
import { closeDecodePool, fetchChunkFromOrigin } from '../../src/source/origin.js';
import { MemoryBlobReader } from '../../test/helpers/memory-blob.js';
import { cachedTreeLayer, smallFiles } from './gen.js';
import { elapsed, fmtMB, fmtMs, MiB, say, type BenchArgs } from './report.js';
import { untarFile } from './sys.js';

export const BIG_FILE = 'data/big.bin';

export interface EnginesLayer {
  tree: LayerTree;
  reader: LayerReader;
  composed: ComposedSource;
  bigBytes: number;
  /** GNU tar's extraction of the layer: the big file and the tree every mount is compared with. */
  refDir: string;
  bigSha256: string;
  close(): Promise<void>;
}

export const layerShape = (args: BenchArgs): { bigBytes: number; smallCount: number } =>
  args.quick ? { bigBytes: 64 * MiB, smallCount: 5_000 } : { bigBytes: 256 * MiB, smallCount: 20_000 };

export async function enginesLayer(args: BenchArgs): Promise<EnginesLayer> {
  const { bigBytes, smallCount } = layerShape(args);
  let t = performance.now();
  // gzip -1: decompression is never on the measured path (every chunk is in memory before the first mount).
  const layer = await cachedTreeLayer(
    `engines-${bigBytes}-${smallCount}`,
    args.noCache,
    () => [
      { path: BIG_FILE, size: bigBytes, content: 'mixed', seed: 5151 },
      ...smallFiles('usr/share/pkg', smallCount, 3000),
    ],
    1,
  );
  say(`layer ready in ${fmtMs(elapsed(t))}${layer.hit ? ' (cached)' : ' (generated)'}`);
  const gz = readFileSync(layer.path);
  t = performance.now();
  const decoded: Buffer[] = [];
  const blob = new MemoryBlobReader(gz);
  const index = await buildIndexFromStream({
    layerDigest: sha256(gz),
    mediaType: MediaType.ociLayerGzip,
    blob,
    onChunk: (i, bytes) => (decoded[i] = Buffer.from(bytes)),
  });
  const store = new MemoryChunkStore({ maxBytes: 2 * index.uncompressedSize + 64 * MiB });
  for (const [i, c] of index.chunks.entries()) {
    const bytes = decoded[i];
    if (bytes === undefined) throw new Error(`index build handed over no bytes for chunk ${i}`);
    await store.put(c.digest, bytes);
  }
  decoded.length = 0;
  // The daemon's stack (dedupe → store-through → …) over a store that already holds every chunk.
  const composed = composeSource({
    store,
    origin: { blobFor: () => blob, fetch: fetchChunkFromOrigin },
    concurrency: 8,
    log: silentLogger(),
  });
  const reader = new LayerReader({ index, source: composed.source });
  const tree = LayerTree.fromIndex(index);
  say(
    `index: ${index.chunks.length} chunks over ${fmtMB(index.uncompressedSize)} of tar (${fmtMB(gz.length)} gzip), ` +
      `all in memory, in ${fmtMs(elapsed(t))}`,
  );
  t = performance.now();
  const refDir = mkdtempSync(join(tmpdir(), 'ferry-bench-engines-ref-'));
  await untarFile(layer.path, refDir);
  const bigSha256 = sha256(readFileSync(join(refDir, BIG_FILE))).slice('sha256:'.length);
  say(`reference extracted by GNU tar in ${fmtMs(elapsed(t))}`);
  return {
    tree,
    reader,
    composed,
    bigBytes,
    refDir,
    bigSha256,
    async close() {
      rmSync(refDir, { recursive: true, force: true });
      await closeDecodePool();
    },
  };
}
