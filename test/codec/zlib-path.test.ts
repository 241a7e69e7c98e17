// Differential: Node's zlib fast path (bit offsets aligned by empty blocks) and pako produce identical bytes for
// every chunk of gzip -1/-9, node zlib, multi-member and eStargz layers; decodeChunk (auto) always equals pako.
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { chunkJob, type ChunkJob } from '../../src/codec/chunk-job.js';
import { decodeJob } from '../../src/codec/decode-chunk.js';
import { inflateWithZlib } from '../../src/codec/zlib-inflate.js';
import { sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { GzipIndexer } from '../../src/codec/gzip-indexer.js';
import { writeAndIndex } from '../index/estargz-test-utils.js';
import { makeGzipLayer, type GzipLayerOptions } from './gzip-layer.js';
import { chunkFrom, gnuGzip, randomBytesSeeded, textPayload, zranIndex } from './payload.js';

interface Tally {
  chunks: number;
  viaZlib: number;
  /** Chunks starting at a checkpoint with bits ≠ 0 (bit-aligned by empty blocks for zlib). */
  bitOffset: number;
}

/** Checks every chunk of `index`; returns how many the zlib path decoded on its own. */
function differential(index: LayerIndex, blob: Buffer): Tally {
  const tally = { chunks: 0, viaZlib: 0, bitOffset: 0 };
  index.chunks.forEach((c, i) => {
    const job: ChunkJob = chunkJob(index, i);
    if (!('start' in job)) return;
    const span = blob.subarray(c.compressedStart, c.compressedEnd);
    const pako = decodeJob(job, span, 'pako');
    expect(sha256(pako)).toBe(c.digest);
    expect(decodeJob(job, span).equals(pako)).toBe(true);
    const need = job.skip + job.size;
    const fast = inflateWithZlib(span, job.start, need);
    tally.chunks++;
    // No chunk needs pako: not at a bit offset, not when the span crosses into the next gzip member.
    expect(fast).toBeDefined();
    expect(fast!.subarray(job.skip, need).equals(pako)).toBe(true);
    tally.viaZlib++;
    if (job.start.bits !== 0) tally.bitOffset++;
  });
  return tally;
}

const layers: Array<[string, GzipLayerOptions]> = [
  ['gzip -1', { totalBytes: 9_000_000, compression: 1, fileBytes: 700_001, spanBytes: 256 * 1024 }],
  ['gzip -9', { totalBytes: 9_000_000, compression: 9, fileBytes: 1_300_000, spanBytes: 256 * 1024 }],
  ['node zlib', { totalBytes: 9_000_000, compression: 'node', fileBytes: 500_000, spanBytes: 128 * 1024 }],
  [
    'multi-member',
    { totalBytes: 9_000_000, compression: 'members', fileBytes: 200_000, spanBytes: 256 * 1024 },
  ],
];

describe.each(layers)('zlib path vs pako on a %s layer', (_name, opts) => {
  let layer: Awaited<ReturnType<typeof makeGzipLayer>>;
  beforeAll(async () => {
    layer = await makeGzipLayer({ ...opts, chunkSizeBytes: 256 * 1024 });
  });

  it('decodes every index chunk identically through zlib and through pako', () => {
    const t = differential(layer.index, layer.gz);
    expect(t.chunks).toBeGreaterThan(20);
    expect(t.viaZlib).toBe(t.chunks);
    if (opts.compression !== 'members') expect(t.bitOffset).toBeGreaterThan(5);
  });
});

describe('zlib path vs pako on synthetic chunks', () => {
  it('agrees from every checkpoint, for sizes crossing spans and gzip members', () => {
    const data = Buffer.concat([
      textPayload(900_000, 21),
      randomBytesSeeded(200_000, 22),
      textPayload(800_000, 23),
    ]);
    const gz = Buffer.concat([gnuGzip(data, 6), gzipSync(textPayload(300_000, 24)), gnuGzip(data, 1)]);
    const ix = new GzipIndexer({ spanBytes: 48 * 1024 });
    const parts: Buffer[] = [];
    ix.push(gz, (o) => parts.push(Buffer.from(o)));
    ix.finish();
    const plain = Buffer.concat(parts);
    const chunks = ix.checkpoints.flatMap((cp, i) =>
      [1, 70_000, 400_000]
        .filter((s) => cp.uncompressedOffset + 3 + s <= plain.length)
        .map((s) => chunkFrom(i, cp, cp.uncompressedOffset + 3, plain, s, gz.length)),
    );
    const t = differential(zranIndex(ix.checkpoints, ix.windows, chunks, gz.length), gz);
    expect(t.viaZlib).toBe(t.chunks);
    expect(new Set(ix.checkpoints.map((c) => c.bits))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7]));
  });

  it('agrees on eStargz gzip-member chunks, including innerOffset-packed small files', async () => {
    const entries = Array.from({ length: 60 }, (_, i) => ({
      path: `f${i}`,
      type: 'file' as const,
      content: i % 4 === 0 ? randomBytesSeeded(300_000 + i, i) : textPayload(i * 9_000 + 5, i),
    }));
    const b = await writeAndIndex(entries, { chunkSizeBytes: 128 * 1024, minChunkSizeBytes: 40_000 });
    expect(b.index.codec).toBe('gzip-member');
    const t = differential(b.index, b.blob);
    expect(t.viaZlib).toBe(t.chunks);
  });
});
