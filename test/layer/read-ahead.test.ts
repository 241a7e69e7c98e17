// ReadAhead glue: per-handle state behind LayerReader, fetches through the ChunkSource with the policy's
// priorities, the global memory bound across files, cancel on release, per-file stats.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LayerReader } from '../../src/layer/layer-reader.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { ReadAheadBudget } from '../../src/layer/read-ahead-budget.js';
import type { ChunkRequest, ChunkSource } from '../../src/source/chunk-source.js';
import { AbortedError } from '../../src/errors.js';
import { buildIdentityLayer } from '../helpers/identity-layer.js';

const CHUNK = 64 * 1024;
const a = randomBytes(64 * CHUNK);
const b = randomBytes(64 * CHUNK);
const { index, blob } = buildIdentityLayer(
  [
    { path: 'a', content: a },
    { path: 'b', content: b },
    { path: 'small', content: 'tiny' },
  ],
  { chunkSizeBytes: CHUNK },
);
const tree = LayerTree.fromIndex(index);
const A = tree.lookup('a')!;
const B = tree.lookup('b')!;

/** Answers demand fetches at once; read-ahead ('prefetch' or demand issued by read-ahead) is held until released. */
class HoldingSource implements ChunkSource {
  readonly requests: Array<{ req: ChunkRequest; signal: AbortSignal | undefined }> = [];
  private readonly held: Array<() => void> = [];
  hold = true;
  fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    this.requests.push({ req, signal });
    const c = req.index.chunks[req.chunk]!;
    const bytes = blob.subarray(c.compressedStart, c.compressedStart + c.size);
    if (!this.hold || signal === undefined) return Promise.resolve(bytes);
    return new Promise((resolve, reject) => {
      this.held.push(() => resolve(bytes));
      signal.addEventListener('abort', () => reject(new AbortedError('aborted')), { once: true });
    });
  }
  releaseAll(): void {
    for (const r of this.held.splice(0)) r();
  }
}

const settings = { minWindowBytes: 2 * CHUNK, maxWindowBytes: 16 * CHUNK, maxInFlightChunks: 4 };
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(memoryBytes = 64 * CHUNK): {
  source: HoldingSource;
  reader: LayerReader;
  budget: ReadAheadBudget;
} {
  const source = new HoldingSource();
  const budget = new ReadAheadBudget({ maxBytes: memoryBytes });
  // Demand reads in these tests pass no signal, so the holding source answers them at once.
  const reader = new LayerReader({ index, source, readAhead: { settings, budget } });
  return { source, reader, budget };
}

const readAheadReqs = (s: HoldingSource): ChunkRequest[] =>
  s.requests.filter((r) => r.signal !== undefined).map((r) => r.req);

describe('ReadAhead (through LayerReader)', () => {
  it('fetches the chunks after a sequential reader through the source, near ones as demand', async () => {
    const { source, reader } = setup();
    const ra = reader.readAhead!;
    ra.open(1, A);
    const got = await reader.readFile(A, 0, 4096);
    ra.onRead(1, A, 0, 4096);
    expect(got.equals(a.subarray(0, 4096))).toBe(true);
    const first = readAheadReqs(source);
    const firstChunk = index.chunks.findIndex((c) => c.offset + c.size > A.dataOffset!);
    expect(first.map((r) => r.chunk)).toEqual([firstChunk + 1, firstChunk + 2]);
    expect(first.every((r) => r.priority === 'demand')).toBe(true);
    source.releaseAll();
    await tick();
    // Reading on: the window grows, far chunks go out as prefetch, never more than 4 in flight.
    let bytes = 4096;
    for (let off = 4096; off < 8 * CHUNK; off += 32 * 1024) {
      bytes += 32 * 1024;
      await reader.readFile(A, off, 32 * 1024);
      ra.onRead(1, A, off, 32 * 1024);
      expect(ra.stats().files[0]!.inFlightChunks).toBeLessThanOrEqual(4);
      source.releaseAll();
      await tick();
    }
    const all = readAheadReqs(source);
    expect(all.some((r) => r.priority === 'prefetch')).toBe(true);
    expect(new Set(all.map((r) => r.chunk)).size).toBe(all.length);
    const f = ra.stats().files[0]!;
    expect(f.path).toBe('a');
    expect(f.bytesRead).toBe(bytes);
    expect(f.windowBytes).toBe(16 * CHUNK);
    expect(f.hitChunks).toBeGreaterThanOrEqual(7);
    expect(f.issuedChunks).toBe(all.length);
  });

  it('gives small files no state and reads that never repeat a chunk no read-ahead', () => {
    const { source, reader } = setup();
    const ra = reader.readAhead!;
    ra.open(1, tree.lookup('small')!);
    ra.onRead(1, tree.lookup('small')!, 0, 4);
    ra.open(2, A);
    for (const off of [40, 10, 30, 20].map((k) => k * CHUNK + 100)) ra.onRead(2, A, off, 4096);
    expect(source.requests).toHaveLength(0);
    expect(ra.stats().files.map((f) => f.path)).toEqual(['a']);
  });

  it('stops starting read-ahead at the global memory bound, across files and handles', async () => {
    const { source, reader, budget } = setup(3 * CHUNK);
    const ra = reader.readAhead!;
    ra.open(1, A);
    ra.open(2, B);
    ra.onRead(1, A, 0, 4096);
    ra.onRead(2, B, 0, 4096);
    expect(readAheadReqs(source)).toHaveLength(3);
    expect(budget.inUseBytes).toBe(3 * CHUNK);
    expect(budget.refused).toBe(1);
    source.releaseAll();
    await tick();
    expect(budget.inUseBytes).toBeLessThanOrEqual(3 * CHUNK);
    // The refused chunk is asked for again on the next read of that file.
    ra.onRead(2, B, 4096, 4096);
    const bChunks = readAheadReqs(source).filter((r) => {
      const c = index.chunks[r.chunk]!;
      return c.offset >= B.dataOffset!;
    });
    expect(bChunks.length).toBeGreaterThanOrEqual(2);
    expect(budget.peakBytes).toBe(3 * CHUNK);
  });

  it('two handles on one file each read ahead, and release cancels only that handle', async () => {
    const { source, reader, budget } = setup();
    const ra = reader.readAhead!;
    ra.open(1, A);
    ra.open(2, A);
    ra.onRead(1, A, 0, 4096);
    ra.onRead(2, A, 32 * CHUNK, 4096);
    ra.onRead(2, A, 32 * CHUNK + 4096, 4096);
    const reqs = source.requests.filter((r) => r.signal !== undefined);
    expect(reqs.length).toBe(4);
    ra.release(1);
    await tick();
    const aborted = reqs.filter((r) => r.signal!.aborted);
    expect(aborted).toHaveLength(2);
    expect(budget.inUseBytes).toBe(2 * CHUNK);
    const files = ra.stats().files;
    expect(files.map((f) => [f.fh, f.open])).toEqual([
      [2, true],
      [1, false],
    ]);
    ra.close();
    await tick();
    expect(budget.inUseBytes).toBe(0);
  });
});
