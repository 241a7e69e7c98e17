// Source middleware: singleflight, store-through, verify, priority limiting, deadline, origin adapter, compose.
import { describe, expect, it } from 'vitest';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import type { ChunkStore } from '../../src/chunks/chunk-store.js';
import { AbortedError, DeadlineError, IntegrityError, isFerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { ChunkRequest } from '../../src/source/chunk-source.js';
import { composeSource } from '../../src/source/compose.js';
import { DeadlineSource } from '../../src/source/deadline.js';
import { DedupeSource } from '../../src/source/dedupe.js';
import { LimitSource } from '../../src/source/limit.js';
import { OriginSource } from '../../src/source/origin-source.js';
import { StoreThroughSource } from '../../src/source/store-through.js';
import { VerifySource } from '../../src/source/verify.js';
import { buildIdentityLayer, identityFetch } from '../helpers/identity-layer.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { ManualSource, tick } from './fakes.js';

const layer = buildIdentityLayer(
  Array.from({ length: 6 }, (_, i) => ({ path: `f${i}`, content: Buffer.alloc(3000, i + 1) })),
  { chunkSizeBytes: 1024 },
);
const { index, blob } = layer;
const req = (chunk: number, priority: ChunkRequest['priority'] = 'demand'): ChunkRequest => ({
  index,
  chunk,
  priority,
});
const bytesOf = (chunk: number): Buffer => {
  const c = index.chunks[chunk]!;
  return blob.subarray(c.offset, c.offset + c.size);
};

describe('DedupeSource', () => {
  it('shares one underlying fetch among concurrent callers', async () => {
    const inner = new ManualSource();
    const s = new DedupeSource({ next: inner });
    const ps = [s.fetch(req(1)), s.fetch(req(1)), s.fetch(req(1))];
    await tick();
    expect(inner.calls).toHaveLength(1);
    inner.calls[0]!.resolve(bytesOf(1));
    for (const b of await Promise.all(ps)) expect(b.equals(bytesOf(1))).toBe(true);
    expect(s.inFlight).toBe(0);
    void s.fetch(req(1));
    expect(inner.calls).toHaveLength(2); // finished flights are not reused
  });

  it("one caller's abort does not cancel the fetch for the others", async () => {
    const inner = new ManualSource();
    const s = new DedupeSource({ next: inner });
    const ac = new AbortController();
    const p1 = s.fetch(req(2), ac.signal);
    const p2 = s.fetch(req(2));
    ac.abort();
    await expect(p1).rejects.toBeInstanceOf(AbortedError);
    expect(inner.calls[0]!.signal?.aborted).toBe(false);
    inner.calls[0]!.resolve(bytesOf(2));
    expect((await p2).equals(bytesOf(2))).toBe(true);
  });

  it('aborts the shared fetch when every caller has gone, and starts afresh after', async () => {
    const inner = new ManualSource();
    const s = new DedupeSource({ next: inner });
    const a = new AbortController();
    const b = new AbortController();
    const p1 = s.fetch(req(3), a.signal);
    const p2 = s.fetch(req(3), b.signal);
    a.abort();
    b.abort();
    await expect(Promise.all([p1, p2])).rejects.toBeInstanceOf(AbortedError);
    expect(inner.calls[0]!.signal?.aborted).toBe(true);
    const p3 = s.fetch(req(3));
    expect(inner.calls).toHaveLength(2);
    inner.calls[1]!.resolve(bytesOf(3));
    expect((await p3).equals(bytesOf(3))).toBe(true);
  });

  it('promotes a prefetch flight when a demand reader joins it', () => {
    const inner = new ManualSource();
    const s = new DedupeSource({ next: inner });
    void s.fetch(req(4, 'prefetch'));
    void s.fetch(req(4, 'demand'));
    expect(inner.promoted.map((r) => r.chunk)).toEqual([4]);
  });
});

describe('StoreThroughSource', () => {
  it('answers from the store, else fetches and stores', async () => {
    const store = new MemoryChunkStore({ maxBytes: 1 << 20 });
    const inner = new ManualSource();
    const s = new StoreThroughSource({ store, next: inner, log: silentLogger() });
    const p = s.fetch(req(0));
    await tick();
    inner.calls[0]!.resolve(bytesOf(0));
    expect((await p).equals(bytesOf(0))).toBe(true);
    expect(store.has(index.chunks[0]!.digest)).toBe(true);
    expect((await s.fetch(req(0))).equals(bytesOf(0))).toBe(true);
    expect(inner.calls).toHaveLength(1);
  });

  it('store failures never fail the read', async () => {
    const broken: ChunkStore = {
      get: () => Promise.reject(new Error('disk on fire')),
      has: () => false,
      put: () => Promise.reject(new Error('disk on fire')),
      stats: () => new MemoryChunkStore({ maxBytes: 1 }).stats(),
      tiers: () => ({}),
    };
    const inner = new ManualSource();
    const s = new StoreThroughSource({ store: broken, next: inner, log: silentLogger() });
    const p = s.fetch(req(1));
    await tick();
    inner.calls[0]!.resolve(bytesOf(1));
    expect((await p).equals(bytesOf(1))).toBe(true);
  });

  it('answers the reader without waiting for a slow store write, which still completes', async () => {
    const memory = new MemoryChunkStore({ maxBytes: 1 << 20 });
    let finishWrite: (() => void) | undefined;
    const slowDisk: ChunkStore = {
      get: (d) => memory.get(d),
      has: (d) => memory.has(d),
      put: (d, b) =>
        new Promise<void>((resolve) => {
          finishWrite = () => void memory.put(d, b).then(resolve);
        }),
      stats: () => memory.stats(),
      tiers: () => ({}),
    };
    const inner = new ManualSource();
    const s = new StoreThroughSource({ store: slowDisk, next: inner, log: silentLogger() });
    const p = s.fetch(req(2));
    await tick();
    inner.calls[0]!.resolve(bytesOf(2));
    expect((await p).equals(bytesOf(2))).toBe(true);
    // The write was started and is still pending: the reader did not wait for it.
    expect(finishWrite).toBeDefined();
    expect(memory.has(index.chunks[2]!.digest)).toBe(false);
    // A read while the write is pending is answered from it, not fetched again.
    expect((await s.fetch(req(2))).equals(bytesOf(2))).toBe(true);
    expect(inner.calls).toHaveLength(1);
    finishWrite!();
    await tick();
    expect(memory.has(index.chunks[2]!.digest)).toBe(true);
  });
});

describe('VerifySource', () => {
  it('passes matching bytes and rejects anything else with an IntegrityError naming layer and chunk', async () => {
    const inner = new ManualSource();
    const s = new VerifySource({ next: inner });
    const ok = s.fetch(req(2));
    const wrong = s.fetch(req(3));
    const short = s.fetch(req(4));
    await tick();
    inner.calls[0]!.resolve(bytesOf(2));
    const bad = Buffer.from(bytesOf(3));
    bad[10] = bad[10]! ^ 1;
    inner.calls[1]!.resolve(bad);
    inner.calls[2]!.resolve(bytesOf(4).subarray(1));
    expect((await ok).equals(bytesOf(2))).toBe(true);
    const e = await wrong.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IntegrityError);
    expect((e as Error).message).toContain('chunk 3');
    expect((e as Error).message).toContain(index.layerDigest);
    await expect(short).rejects.toBeInstanceOf(IntegrityError);
    expect(s.rejected).toBe(2);
  });
});

describe('LimitSource', () => {
  it('bounds concurrency and always starts waiting demand before waiting prefetch', async () => {
    const inner = new ManualSource();
    const s = new LimitSource({ next: inner, concurrency: 2, prefetchSlots: 2 });
    const order: number[] = [];
    const go = (chunk: number, p: ChunkRequest['priority']): Promise<Buffer> =>
      s.fetch(req(chunk, p)).then((b) => {
        order.push(chunk);
        return b;
      });
    const all = [
      go(0, 'prefetch'),
      go(1, 'prefetch'),
      go(2, 'prefetch'),
      go(3, 'prefetch'),
      go(4, 'demand'),
      go(5, 'demand'),
    ];
    await tick();
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([0, 1]);
    expect(s.queued).toEqual({ demand: 2, prefetch: 2 });
    inner.calls[0]!.resolve(bytesOf(0));
    await tick();
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([0, 1, 4]);
    inner.calls[1]!.resolve(bytesOf(1));
    inner.calls[2]!.resolve(bytesOf(4));
    await tick();
    await tick();
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([0, 1, 4, 5, 2]);
    expect(s.active).toBe(2);
    for (const c of inner.calls.slice(3)) c.resolve(bytesOf(c.req.chunk));
    await tick();
    inner.calls.at(-1)!.resolve(bytesOf(3));
    await Promise.all(all);
    expect(s.active).toBe(0);
  });

  it('keeps slots free for readers: prefetch holds at most concurrency minus a quarter', async () => {
    const inner = new ManualSource();
    const s = new LimitSource({ next: inner, concurrency: 4 });
    const pf = [0, 1, 2, 3, 4].map((i) => s.fetch(req(i, 'prefetch')));
    await tick();
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([0, 1, 2]);
    expect(s.activePrefetch).toBe(3);
    const d = s.fetch(req(9, 'demand'));
    await tick();
    // The reader starts at once, with every prefetch still running.
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([0, 1, 2, 9]);
    for (const c of inner.calls) c.resolve(bytesOf(c.req.chunk));
    await d;
    await tick();
    for (const c of inner.calls.slice(4)) c.resolve(bytesOf(c.req.chunk));
    await tick();
    for (const c of inner.calls.slice(5)) c.resolve(bytesOf(c.req.chunk));
    await Promise.all(pf);
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([0, 1, 2, 9, 3, 4]);
    expect(s.active).toBe(0);
  });

  it('holds background prefetch while its pressure says none may run, and resumes when it lifts', async () => {
    const inner = new ManualSource();
    let allowed = 0;
    const s = new LimitSource({
      next: inner,
      concurrency: 4,
      pressure: { allowed: (max) => Math.min(max, allowed) },
      recheckMs: 5,
    });
    const pf = s.fetch({ ...req(0, 'prefetch'), background: true });
    const d = s.fetch(req(1, 'demand'));
    await new Promise((r) => setTimeout(r, 30));
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([1]);
    expect(s.queued).toEqual({ demand: 0, prefetch: 1 });
    expect(s.counts.prefetchHeld).toBe(1);
    // A reader's read-ahead (prefetch, not background) is not held by pressure.
    const ra = s.fetch(req(2, 'prefetch'));
    await tick();
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([1, 2]);
    allowed = 2;
    await new Promise((r) => setTimeout(r, 30));
    expect(inner.calls.map((c) => c.req.chunk)).toEqual([1, 2, 0]);
    for (const c of inner.calls) c.resolve(bytesOf(c.req.chunk));
    await Promise.all([pf, d, ra]);
  });

  it('promote moves a queued prefetch into the demand queue', async () => {
    const inner = new ManualSource();
    const s = new LimitSource({ next: inner, concurrency: 1 });
    void s.fetch(req(0, 'demand'));
    void s.fetch(req(1, 'prefetch'));
    void s.fetch(req(2, 'demand'));
    await tick();
    s.promote(req(1, 'demand'));
    expect(s.queued).toEqual({ demand: 2, prefetch: 0 });
  });

  it('a waiter aborted while queued leaves the queue', async () => {
    const inner = new ManualSource();
    const s = new LimitSource({ next: inner, concurrency: 1 });
    void s.fetch(req(0));
    const ac = new AbortController();
    const p = s.fetch(req(1), ac.signal);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(s.queued).toEqual({ demand: 0, prefetch: 0 });
    inner.calls[0]!.resolve(bytesOf(0));
    await tick();
    expect(s.active).toBe(0);
  });
});

describe('DeadlineSource', () => {
  it('fails slow fetches with DeadlineError but lets the shared fetch finish into the store', async () => {
    const inner = new ManualSource();
    const store = new MemoryChunkStore({ maxBytes: 1 << 20 });
    const stack = new DedupeSource({
      next: new StoreThroughSource({ store, next: inner, log: silentLogger() }),
    });
    const s = new DeadlineSource({ next: stack, deadlineMs: 30 });
    const t0 = Date.now();
    const e = await s.fetch(req(5)).catch((x: unknown) => x);
    expect(isFerryError(e, 'DEADLINE_EXCEEDED')).toBe(true);
    expect(e).toBeInstanceOf(DeadlineError);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(inner.calls[0]!.signal?.aborted).toBe(false);
    inner.calls[0]!.resolve(bytesOf(5));
    await tick();
    await tick();
    expect(store.has(index.chunks[5]!.digest)).toBe(true);
    expect((await s.fetch(req(5))).equals(bytesOf(5))).toBe(true);
  });
});

describe('composeSource', () => {
  it('builds dedupe → store-through → limit → verify → origin and counts per tier', async () => {
    const reader = new MemoryBlobReader(blob);
    const store = new MemoryChunkStore({ maxBytes: 1 << 20 });
    const c = composeSource({
      store,
      origin: { blobFor: () => reader, fetch: identityFetch },
      concurrency: 2,
      log: silentLogger(),
    });
    const all = await Promise.all(index.chunks.map((_, i) => c.source.fetch(req(i))));
    all.forEach((b, i) => expect(b.equals(bytesOf(i))).toBe(true));
    await Promise.all([c.source.fetch(req(0)), c.source.fetch(req(1))]);
    const st = c.stats();
    // Identical chunks (same digest) are fetched once: content addressing dedups within a layer too.
    const distinct = new Map(index.chunks.map((ch) => [ch.digest, ch.size] as const));
    expect(distinct.size).toBeLessThan(index.chunks.length);
    expect(st.origin.chunks).toBe(distinct.size);
    expect(st.origin.bytes).toBe([...distinct.values()].reduce((a, b) => a + b, 0));
    expect(st.memory.chunks).toBe(2);
    expect(c.dedupe.joined).toBe(index.chunks.length - distinct.size);
    // Chunks fetched together share Range requests (RangeCoalescer): every distinct chunk is read once.
    const ranges = c.origin.rangeStats();
    expect(reader.rangeCalls).toBe(ranges.requests);
    expect(ranges.requests + ranges.merged).toBe(distinct.size);
  });

  it('rejects corrupt origin bytes and stores nothing', async () => {
    const corrupt = Buffer.from(blob);
    corrupt[5] = corrupt[5]! ^ 0xff;
    const store = new MemoryChunkStore({ maxBytes: 1 << 20 });
    const origin = new OriginSource({ blobFor: () => new MemoryBlobReader(corrupt), fetch: identityFetch });
    const c = composeSource({
      store,
      origin: { blobFor: () => new MemoryBlobReader(corrupt), fetch: identityFetch },
      concurrency: 1,
      log: silentLogger(),
    });
    await expect(c.source.fetch(req(0))).rejects.toBeInstanceOf(IntegrityError);
    expect(store.stats().entries).toBe(0);
    expect((await origin.fetch(req(1))).equals(bytesOf(1))).toBe(true);
  });
});
