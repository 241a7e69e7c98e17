// Offline model of the cold start's fetch cost under a chunking policy: builds the cold-start image's indexes
// (bench/lib/cold-image.ts) with each policy and sums, for the start's reads, the compressed spans of the chunks
// they touch, the windows those chunks need (unless the chunk holding the window's bytes is fetched too) and
// the published index size. Figures to choose a policy from; the real measure is bench/cold-start.ts.
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { buildIndexFromStream } from '../src/index/build-stream.js';
import { serializeIndex } from '../src/index/serialize.js';
import { splitWindows } from '../src/index/publish.js';
import { chunksCovering, findChunk, type LayerIndex, type WindowRef } from '../src/image/layer-index.js';
import type { BlobReader } from '../src/image/blob-reader.js';
import type { Digest } from '../src/image/digest.js';
import { coldImage, coldLayers } from './lib/cold-image.js';

const KiB = 1024;
interface Policy {
  name: string;
  chunkSizeBytes?: number;
  packSizeBytes?: number;
}
// e.g. '[{"name":"1M packs","packSizeBytes":1048576},{"name":"default"}]'
const policies = JSON.parse(process.argv[2] ?? '[{"name":"default"}]') as Policy[];

async function* pieces(bytes: Buffer): AsyncIterable<Buffer> {
  for (let o = 0; o < bytes.length; o += 64 * KiB)
    yield await Promise.resolve(bytes.subarray(o, o + 64 * KiB));
}

function reader(digest: Digest, bytes: Buffer): BlobReader {
  return {
    digest,
    size: () => Promise.resolve(bytes.length),
    readRange: (s, e) => Promise.resolve(bytes.subarray(s, e)),
    stream: () => Promise.resolve(pieces(bytes)),
  };
}

const image = coldImage({ quick: false, noCache: false });
const paths = await coldLayers(image, false);
const blobs = await Promise.all(paths.map((p) => readFile(p)));
const compressedTotal = blobs.reduce((a, b) => a + b.length, 0);

for (const pol of policies) {
  const indexes: LayerIndex[] = [];
  const refsOf: WindowRef[][] = [];
  let indexBytes = 0;
  let windowsBlobBytes = 0;
  for (const b of blobs) {
    const digest = `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
    const ix = await buildIndexFromStream({
      layerDigest: digest,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob: reader(digest, b),
      ...(pol.chunkSizeBytes !== undefined ? { chunkSizeBytes: pol.chunkSizeBytes } : {}),
      ...(pol.packSizeBytes !== undefined ? { packSizeBytes: pol.packSizeBytes } : {}),
    });
    indexes.push(ix);
    const split = splitWindows(ix)!;
    windowsBlobBytes += split.blob.length;
    indexBytes += serializeIndex({
      ...ix,
      windows: [],
      windowsBlob: { digest, size: split.blob.length, refs: split.refs },
    }).length;
    refsOf.push(split.refs);
  }
  // The chunks the start touches, per layer.
  const need = indexes.map(() => new Set<number>());
  let startChunksUncompressed = 0;
  for (const op of image.start) {
    const li = indexes.findIndex((ix) => ix.entries.some((e) => e.path === op.path));
    const ix = indexes[li]!;
    const e = ix.entries.find((x) => x.path === op.path)!;
    for (const c of chunksCovering(ix.chunks, e.dataOffset! + op.offset, op.length)) need[li]!.add(c);
  }
  let chunkBytes = 0;
  let windowBytes = 0;
  let windows = 0;
  let chunks = 0;
  indexes.forEach((ix, li) => {
    const refs = refsOf[li]!;
    for (const ci of need[li]!) {
      const c = ix.chunks[ci]!;
      chunks++;
      startChunksUncompressed += c.size;
      chunkBytes += c.compressedEnd - c.compressedStart;
      const cp = ix.checkpoints[c.checkpoint]!;
      const ref = refs[cp.window]!;
      if (ref.size === 0) continue;
      const from = findChunk(ix.chunks, cp.uncompressedOffset - ref.size);
      const f = ix.chunks[from];
      if (f !== undefined && need[li]!.has(from) && f.offset + f.size >= cp.uncompressedOffset) continue;
      windows++;
      windowBytes += ref.length;
    }
  });
  const totalChunks = indexes.reduce((a, ix) => a + ix.chunks.length, 0);
  const totalCps = indexes.reduce((a, ix) => a + ix.checkpoints.length, 0);
  const mb = (n: number): string => (n / 1e6).toFixed(2);
  console.log(
    `${pol.name.padEnd(14)} chunks ${totalChunks} cps ${totalCps} | index ${mb(indexBytes)} MB` +
      ` (${((indexBytes / compressedTotal) * 100).toFixed(2)}%) windows blob ${mb(windowsBlobBytes)} MB |` +
      ` start: ${chunks} chunks ${mb(startChunksUncompressed)} MB raw, ${mb(chunkBytes)} MB spans +` +
      ` ${windows} windows ${mb(windowBytes)} MB = ${mb(chunkBytes + windowBytes + indexBytes)} MB with index`,
  );
}
