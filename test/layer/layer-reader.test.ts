// LayerReader: ranges across chunks, EOF clamping, parallel demand fetches, the chunk-read hook.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LayerReader } from '../../src/layer/layer-reader.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import type { ChunkRequest, ChunkSource } from '../../src/source/chunk-source.js';
import { FormatError } from '../../src/errors.js';
import { buildIdentityLayer } from '../helpers/identity-layer.js';

const content = randomBytes(10_000);
const { index, blob } = buildIdentityLayer(
  [
    { path: 'f', content },
    { path: 'empty', content: '' },
  ],
  {
    chunkSizeBytes: 1000,
  },
);

class BlobSource implements ChunkSource {
  readonly requests: ChunkRequest[] = [];
  fetch(req: ChunkRequest): Promise<Buffer> {
    this.requests.push(req);
    const c = req.index.chunks[req.chunk]!;
    return Promise.resolve(blob.subarray(c.offset, c.offset + c.size));
  }
}

describe('LayerReader', () => {
  const tree = LayerTree.fromIndex(index);
  const f = tree.lookup('f')!;

  it('reads any range exactly, fetching only covering chunks as demand', async () => {
    const source = new BlobSource();
    const seen: number[] = [];
    const r = new LayerReader({ index, source, onChunkRead: (_i, c, t) => seen.push(c) && t >= 0 });
    for (const [off, len] of [
      [0, 10],
      [990, 30],
      [1234, 5000],
      [0, 10_000],
      [9999, 1],
    ] as const) {
      const got = await r.readFile(f, off, len);
      expect(got.equals(content.subarray(off, off + len))).toBe(true);
    }
    expect(source.requests.every((q) => q.priority === 'demand')).toBe(true);
    expect(seen.length).toBe(source.requests.length);
    source.requests.length = 0;
    await r.readFile(f, 1500, 100);
    expect(source.requests.length).toBe(1);
  });

  it('clamps at EOF and returns empty past it', async () => {
    const r = new LayerReader({ index, source: new BlobSource() });
    expect((await r.readFile(f, 9990, 4096)).equals(content.subarray(9990))).toBe(true);
    expect((await r.readFile(f, 10_000, 10)).length).toBe(0);
    expect((await r.readFile(f, 50_000, 10)).length).toBe(0);
    expect((await r.readFile(tree.lookup('empty')!, 0, 10)).length).toBe(0);
  });

  it('fails with FormatError when the index does not cover the file', async () => {
    const holes = { ...index, chunks: index.chunks.filter((_, i) => i !== 3) };
    const r = new LayerReader({ index: holes, source: new BlobSource() });
    await expect(r.readFile(f, 0, 10_000)).rejects.toBeInstanceOf(FormatError);
  });
});
