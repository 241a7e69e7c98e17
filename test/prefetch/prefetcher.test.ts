// Prefetcher: order, concurrency bound, budget via the plan, cache skips, hit accounting, cancel, and demand
// reads pre-empting prefetch through the real LimitSource / DedupeSource.
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { planPrefetch } from '../../src/prefetch/plan.js';
import { Prefetcher } from '../../src/prefetch/prefetcher.js';
import { DedupeSource } from '../../src/source/dedupe.js';
import { LimitSource } from '../../src/source/limit.js';
import type { TraceEntry } from '../../src/prefetch/trace.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { ManualSource, tick } from '../source/fakes.js';
import { CountingSource, fakeIndex } from './fixtures.js';

const a = fakeIndex('a', 40);
const entry = (ix: LayerIndex, chunk: number): TraceEntry => ({
  layerDigest: ix.layerDigest,
  chunkDigest: ix.chunks[chunk]!.digest,
  chunkIndex: chunk,
  size: ix.chunks[chunk]!.size,
  firstAccessMs: 0,
});
const plan = (chunks: number[], budgetBytes = 1e9) =>
  planPrefetch({
    indexes: [a],
    trace: chunks.map((c) => entry(a, c)),
    budgetBytes,
    defaultBytesPerLayer: 0,
    background: 'none',
  }).items;

describe('Prefetcher', () => {
  it('fetches in trace order with priority prefetch and never more than `concurrency` at once', async () => {
    const source = new CountingSource(3);
    const p = new Prefetcher({ source, concurrency: 3, log: silentLogger() });
    const order = [9, 2, 30, 4, 5, 6, 7, 8, 1, 0, 11, 12];
    const stats = await p.run(plan(order));
    expect(source.order.map((o) => o.chunk)).toEqual(order);
    expect(source.order.every((o) => o.priority === 'prefetch')).toBe(true);
    expect(source.maxActive).toBe(3);
    expect(stats).toMatchObject({ planned: 12, fetched: 12, fetchedBytes: 12_000, errors: 0 });
    expect(p.status()).toMatchObject({ phase: 'done', chunksDone: 12, chunksTotal: 12, bytesDone: 12_000 });
  });

  it('counts chunks fetched now (a start set reading heads) once, and run does not fetch them again', async () => {
    const source = new CountingSource();
    const p = new Prefetcher({ source, concurrency: 2, log: silentLogger() });
    const items = plan([3, 4, 5]);
    const bytes = await p.fetchNow(items[1]!);
    expect(bytes.length).toBe(1000);
    expect(p.stats()).toMatchObject({ planned: 1, fetched: 1, fetchedBytes: 1000 });
    const stats = await p.run(items);
    expect(source.order.map((o) => o.chunk)).toEqual([4, 3, 5]);
    expect(stats).toMatchObject({ planned: 3, plannedBytes: 3000, fetched: 3, fetchedBytes: 3000 });
  });

  it('respects the byte budget of the plan', async () => {
    const source = new CountingSource();
    const p = new Prefetcher({ source, concurrency: 4, log: silentLogger() });
    const stats = await p.run(plan([1, 2, 3, 4, 5, 6], 3500));
    expect(source.order.map((o) => o.chunk)).toEqual([1, 2, 3]);
    expect(stats.fetchedBytes).toBe(3000);
  });

  it('skips cached chunks and chunks a reader demanded before the prefetcher got to them', async () => {
    const source = new CountingSource();
    const cached = new Set([a.chunks[2]!.digest]);
    const p = new Prefetcher({
      source,
      cached: { has: (d) => cached.has(d) },
      concurrency: 1,
      log: silentLogger(),
    });
    p.noteDemand(a, 3);
    const stats = await p.run(plan([1, 2, 3, 4]));
    expect(source.order.map((o) => o.chunk)).toEqual([1, 4]);
    expect(stats).toMatchObject({ fetched: 2, alreadyCached: 1, demandedFirst: 1, demandChunks: 1 });
  });

  it('counts hits (once per chunk), joins of in-flight prefetches, and wasted bytes', async () => {
    const source = new ManualSource();
    const p = new Prefetcher({ source, concurrency: 2, log: silentLogger() });
    const done = p.run(plan([1, 2, 3]));
    await tick();
    expect(source.calls.map((c) => c.req.chunk)).toEqual([1, 2]);
    source.calls[0]!.resolve(Buffer.alloc(1000));
    await tick();
    p.noteDemand(a, 1); // already prefetched: a hit
    p.noteDemand(a, 1); // repeated read: not a second hit
    p.noteDemand(a, 2); // still in flight: a join
    source.calls[1]!.resolve(Buffer.alloc(1000));
    await tick();
    source.calls[2]!.resolve(Buffer.alloc(1000)); // chunk 3: never read, wasted
    const stats = await done;
    expect(stats).toMatchObject({
      hits: 1,
      hitBytes: 1000,
      joined: 1,
      fetched: 3,
      wastedBytes: 1000,
      demandChunks: 2,
    });
  });

  it('cancel aborts in-flight fetches and stops queuing', async () => {
    const source = new ManualSource();
    const p = new Prefetcher({ source, concurrency: 2, log: silentLogger() });
    const done = p.run(plan([1, 2, 3, 4, 5]));
    await tick();
    p.cancel();
    const stats = await done;
    expect(source.calls).toHaveLength(2);
    expect(source.calls.every((c) => c.signal?.aborted === true)).toBe(true);
    expect(stats).toMatchObject({ fetched: 0, errors: 0 });
    expect(p.status().phase).toBe('cancelled');
  });

  it('an open run takes more items as layers arrive, traced ones ahead of waiting background ones', async () => {
    const source = new ManualSource();
    const p = new Prefetcher({ source, concurrency: 1, log: silentLogger() });
    const first = planPrefetch({
      indexes: [a],
      trace: [entry(a, 1)],
      budgetBytes: 1e9,
      defaultBytesPerLayer: 0,
      background: 'trace',
    }).items.slice(0, 4); // chunk 1 (trace), then 0, 2, 3 (background)
    let settled = false;
    const done = p.run(first, { open: true }).then((s) => ((settled = true), s));
    await tick();
    expect(source.calls.map((c) => c.req.chunk)).toEqual([1]);
    p.append(plan([7, 1])); // 1 is planned already: not again
    source.calls[0]!.resolve(Buffer.alloc(1000));
    await tick();
    expect(source.calls.map((c) => c.req.chunk)).toEqual([1, 7]);
    for (let i = 1; i < 5; i++) {
      source.calls[i]!.resolve(Buffer.alloc(1000));
      await tick();
    }
    expect(source.calls.map((c) => c.req.chunk)).toEqual([1, 7, 0, 2, 3]);
    await tick();
    expect(settled).toBe(false); // open: more layers may come
    p.append(plan([9]));
    await tick();
    source.calls[5]!.resolve(Buffer.alloc(1000));
    await tick();
    p.close();
    expect(await done).toMatchObject({ planned: 6, fetched: 6 });
    expect(p.status()).toMatchObject({ phase: 'done', chunksDone: 6, chunksTotal: 6 });
  });

  it('an open run ends on cancel even while waiting for more items', async () => {
    const p = new Prefetcher({ source: new CountingSource(), concurrency: 2, log: silentLogger() });
    const done = p.run(plan([1]), { open: true });
    await tick();
    p.cancel();
    await done;
    expect(p.status().phase).toBe('cancelled');
    p.append(plan([2])); // after cancel: ignored
    expect(p.stats().planned).toBe(1);
  });

  it('keeps going after a failed chunk and counts the error', async () => {
    const source = new ManualSource();
    const p = new Prefetcher({ source, concurrency: 1, log: silentLogger() });
    const done = p.run(plan([1, 2]));
    await tick();
    source.calls[0]!.reject(new Error('registry down'));
    await tick();
    source.calls[1]!.resolve(Buffer.alloc(1000));
    expect(await done).toMatchObject({ errors: 1, fetched: 1 });
  });

  it('lets demand reads go first: a demand request overtakes queued prefetches in the limiter', async () => {
    const origin = new ManualSource();
    const limit = new LimitSource({ next: origin, concurrency: 1 });
    const p = new Prefetcher({ source: limit, concurrency: 4, log: silentLogger() });
    const done = p.run(plan([1, 2, 3, 4]));
    await tick();
    expect(origin.calls.map((c) => c.req.chunk)).toEqual([1]); // 2, 3, 4 wait in the limiter
    const demand = limit.fetch({ index: a, chunk: 20, priority: 'demand' });
    origin.calls[0]!.resolve(Buffer.alloc(1000));
    await tick();
    expect(origin.calls.map((c) => c.req.chunk)).toEqual([1, 20]); // demand before prefetch 2
    origin.calls[1]!.resolve(Buffer.alloc(1000));
    await demand;
    for (let i = 2; i < 5; i++) {
      await tick();
      origin.calls[i]!.resolve(Buffer.alloc(1000));
    }
    await done;
    expect(origin.calls.map((c) => c.req.chunk)).toEqual([1, 20, 2, 3, 4]);
  });

  it('a demand read of a chunk queued as prefetch promotes it ahead of the other prefetches', async () => {
    const origin = new ManualSource();
    const limit = new LimitSource({ next: origin, concurrency: 1 });
    const dedupe = new DedupeSource({ next: limit });
    const p = new Prefetcher({ source: dedupe, concurrency: 4, log: silentLogger() });
    const done = p.run(plan([1, 2, 3, 4]));
    await tick();
    p.noteDemand(a, 4);
    const demand = dedupe.fetch({ index: a, chunk: 4, priority: 'demand' }); // joins the queued prefetch
    origin.calls[0]!.resolve(Buffer.alloc(1000));
    await tick();
    expect(origin.calls.map((c) => c.req.chunk)).toEqual([1, 4]);
    origin.calls[1]!.resolve(Buffer.alloc(1000));
    await demand;
    for (let i = 2; i < 4; i++) {
      await tick();
      origin.calls[i]!.resolve(Buffer.alloc(1000));
    }
    expect(await done).toMatchObject({ joined: 1, fetched: 4 });
  });
});
