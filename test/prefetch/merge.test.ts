// Trace merging: typical first-access time, weighting by how often a chunk appears, decay, and the size bound.
import { describe, expect, it } from 'vitest';
import { mergeTrace, rankKey } from '../../src/prefetch/merge.js';
import type { MergedTrace, Trace, TraceEntry } from '../../src/prefetch/trace.js';
import { fakeIndex, MANIFEST } from './fixtures.js';

const ix = fakeIndex('m', 50);

function startup(reads: Array<[chunk: number, ms: number]>): Trace {
  const entries: TraceEntry[] = reads.map(([chunk, ms]) => ({
    layerDigest: ix.layerDigest,
    chunkDigest: ix.chunks[chunk]!.digest,
    chunkIndex: chunk,
    size: 1000,
    firstAccessMs: ms,
  }));
  return { version: 1, manifestDigest: MANIFEST, recordedAt: '', durationMs: 0, entries };
}

const order = (t: MergedTrace) => t.entries.map((e) => e.chunkIndex);
const opts = { maxEntries: 100, alpha: 0.5 };

describe('mergeTrace', () => {
  it('keeps a first startup as is, in first-access order, with full weight', () => {
    const t = mergeTrace(
      undefined,
      startup([
        [3, 0],
        [1, 10],
        [2, 20],
      ]),
      opts,
    );
    expect(order(t)).toEqual([3, 1, 2]);
    expect(t.startups).toBe(1);
    expect(t.entries.every((e) => e.weight === 1 && e.seen === 1)).toBe(true);
  });

  it('moves a chunk towards its typical time (EWMA) and counts appearances', () => {
    let t = mergeTrace(
      undefined,
      startup([
        [1, 100],
        [2, 200],
      ]),
      opts,
    );
    t = mergeTrace(
      t,
      startup([
        [2, 0],
        [1, 300],
      ]),
      opts,
    );
    const byChunk = new Map(t.entries.map((e) => [e.chunkIndex, e]));
    expect(byChunk.get(1)!.firstAccessMs).toBe(200);
    expect(byChunk.get(2)!.firstAccessMs).toBe(100);
    expect(byChunk.get(2)!.seen).toBe(2);
    expect(order(t)).toEqual([2, 1]);
    expect(t.startups).toBe(2);
  });

  it('ranks a chunk that appears in few startups after one read as late in every startup', () => {
    // Chunk 5 is read early but only once; chunk 6 a bit later in every start.
    let t = mergeTrace(undefined, startup([[6, 400]]), opts);
    t = mergeTrace(t, startup([[6, 400]]), opts);
    t = mergeTrace(
      t,
      startup([
        [5, 100],
        [6, 400],
      ]),
      opts,
    );
    const five = t.entries.find((e) => e.chunkIndex === 5)!;
    expect(five.weight).toBe(0.5);
    expect(rankKey(five)).toBeGreaterThan(100);
    expect(order(t)).toEqual([5, 6]); // 110/0.5=220 < 410/1
    // Absent from the next two starts: its weight decays and it falls behind chunk 6.
    t = mergeTrace(t, startup([[6, 400]]), opts);
    t = mergeTrace(t, startup([[6, 400]]), opts);
    expect(order(t)).toEqual([6, 5]);
  });

  it('forgets chunks whose weight decays below the floor', () => {
    let t = mergeTrace(
      undefined,
      startup([
        [1, 0],
        [2, 10],
      ]),
      { ...opts, minWeight: 0.2 },
    );
    t = mergeTrace(t, startup([[2, 10]]), { ...opts, minWeight: 0.2 }); // chunk 1: 0.5
    t = mergeTrace(t, startup([[2, 10]]), { ...opts, minWeight: 0.2 }); // chunk 1: 0.25
    expect(order(t)).toContain(1);
    t = mergeTrace(t, startup([[2, 10]]), { ...opts, minWeight: 0.2 }); // 0.125 < 0.2
    expect(order(t)).toEqual([2]);
  });

  it('is bounded: the latest-ranked chunks are dropped', () => {
    const reads: Array<[number, number]> = Array.from({ length: 50 }, (_, i) => [i, i * 10]);
    const t = mergeTrace(undefined, startup(reads), { maxEntries: 20 });
    expect(order(t)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('keeps the first access when one chunk digest is read in two places in a startup', () => {
    const s = startup([
      [1, 5],
      [2, 9],
    ]);
    const dup: Trace = {
      ...s,
      entries: [...s.entries, { ...s.entries[0]!, chunkIndex: 7, firstAccessMs: 50 }],
    };
    const t = mergeTrace(undefined, dup, opts);
    expect(t.entries).toHaveLength(2);
    expect(t.entries[0]!.firstAccessMs).toBe(5);
  });
});
