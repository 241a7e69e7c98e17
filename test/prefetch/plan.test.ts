// planPrefetch: trace order, pruning of vanished chunks, the byte budget, the no-trace default, background.
import { describe, expect, it } from 'vitest';
import { planPrefetch } from '../../src/prefetch/plan.js';
import type { TraceEntry } from '../../src/prefetch/trace.js';
import { sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { fakeIndex } from './fixtures.js';

const a = fakeIndex('a', 10);
const b = fakeIndex('b', 10);

const entry = (ix: LayerIndex, chunk: number, ms = 0): TraceEntry => ({
  layerDigest: ix.layerDigest,
  chunkDigest: ix.chunks[chunk]!.digest,
  chunkIndex: chunk,
  size: ix.chunks[chunk]!.size,
  firstAccessMs: ms,
});
const base = { indexes: [a, b], budgetBytes: 1e9, defaultBytesPerLayer: 0, background: 'none' } as const;
const ids = (p: ReturnType<typeof planPrefetch>) =>
  p.items.map((i) => `${i.req.index === a ? 'a' : 'b'}${i.req.chunk}`);

describe('planPrefetch', () => {
  it('follows the trace order, deduplicating chunks', () => {
    const p = planPrefetch({ ...base, trace: [entry(b, 4), entry(a, 7), entry(b, 4), entry(a, 0)] });
    expect(ids(p)).toEqual(['b4', 'a7', 'a0']);
    expect(p.items.every((i) => i.phase === 'trace' && i.req.priority === 'prefetch')).toBe(true);
  });

  it('prunes entries whose layer or chunk is gone, and finds moved chunks by digest', () => {
    const gone = { ...entry(a, 1), chunkDigest: sha256('vanished') };
    const foreign = { ...entry(a, 1), layerDigest: sha256('other layer') };
    const moved = { ...entry(a, 5), chunkIndex: 2 };
    const p = planPrefetch({ ...base, trace: [gone, foreign, moved] });
    expect(ids(p)).toEqual(['a5']);
    expect(p.pruned).toBe(2);
  });

  it('stops at the byte budget, in order', () => {
    const p = planPrefetch({
      ...base,
      budgetBytes: 2500,
      trace: [entry(a, 3), entry(a, 1), entry(b, 2), entry(b, 9)],
    });
    expect(ids(p)).toEqual(['a3', 'a1']);
    expect(p.overBudget).toBe(2);
  });

  it('without a trace takes the first N bytes of each layer', () => {
    const p = planPrefetch({ ...base, defaultBytesPerLayer: 2000 });
    expect(ids(p)).toEqual(['a0', 'a1', 'b0', 'b1']);
    expect(p.items.every((i) => i.phase === 'default')).toBe(true);
    expect(planPrefetch(base).items).toHaveLength(0);
  });

  it('completes traced layers (or all) in the background, outside the budget', () => {
    const trace = [entry(a, 8)];
    const t = planPrefetch({ ...base, budgetBytes: 1000, trace, background: 'trace' });
    expect(ids(t)).toEqual([
      'a8',
      ...Array.from({ length: 10 }, (_, i) => `a${i}`).filter((x) => x !== 'a8'),
    ]);
    expect(t.items.slice(1).every((i) => i.phase === 'background')).toBe(true);
    const all = planPrefetch({ ...base, trace, background: 'all' });
    expect(all.items).toHaveLength(20);
  });
});
