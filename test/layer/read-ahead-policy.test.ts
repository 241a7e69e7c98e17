// ReadAheadPolicy: sequential, strided, random and two-reader patterns; window growth and shrink; in-flight cap.
import { describe, expect, it } from 'vitest';
import { ReadAheadPolicy, type ReadAheadFetch } from '../../src/layer/read-ahead-policy.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const CHUNK = MiB;

function policy(
  fileBytes: number,
  o: Partial<{ min: number; max: number; inFlight: number; streams: number }> = {},
): ReadAheadPolicy {
  const chunks = [];
  for (let s = 0; s < fileBytes; s += CHUNK) chunks.push({ start: s, end: Math.min(fileBytes, s + CHUNK) });
  return new ReadAheadPolicy({
    chunks,
    minWindowBytes: o.min ?? 2 * MiB,
    maxWindowBytes: o.max ?? 32 * MiB,
    maxInFlight: o.inFlight ?? 64,
    ...(o.streams !== undefined ? { maxStreams: o.streams } : {}),
  });
}

const positions = (f: readonly ReadAheadFetch[]): number[] => f.map((x) => x.position);

/** Reads [from, to) in `step`-byte requests, completing every read-ahead fetch at once. Returns all issued. */
function readSeq(p: ReadAheadPolicy, from: number, to: number, step = 128 * KiB, t0 = 0): number[] {
  const all: number[] = [];
  let t = t0;
  for (let o = from; o < to; o += step) {
    const queue = positions(p.onRead(o, step, t++));
    while (queue.length > 0) {
      const x = queue.shift()!;
      all.push(x);
      queue.push(...positions(p.onFetchDone(x, true)));
    }
  }
  return all;
}

describe('ReadAheadPolicy', () => {
  it('a read at offset 0 starts read-ahead at the minimum window: the next two chunks, as demand', () => {
    const p = policy(64 * MiB);
    const f = p.onRead(0, 128 * KiB, 0);
    expect(f).toEqual([
      { position: 1, priority: 'demand' },
      { position: 2, priority: 'demand' },
    ]);
    expect(p.windowBytes).toBe(2 * MiB);
  });

  it('sequential reads grow the window by doubling up to the maximum, each chunk asked once, in order', () => {
    const p = policy(256 * MiB);
    const issued = readSeq(p, 0, 64 * MiB);
    expect(new Set(issued).size).toBe(issued.length);
    expect(issued).toEqual([...issued].sort((a, b) => a - b));
    expect(p.windowBytes).toBe(32 * MiB);
    // Far ahead of the reader, but never past position + window.
    expect(Math.max(...issued)).toBeLessThanOrEqual(64 + 32);
    expect(Math.max(...issued)).toBeGreaterThanOrEqual(64 + 16);
    // Every chunk the reader crossed after the first was read ahead.
    expect(p.hits).toBe(63);
    const far = issued.filter((x) => x > 3);
    expect(far.length).toBeGreaterThan(0);
  });

  it('marks only the chunks just ahead of the reader as demand, the rest as prefetch', () => {
    const p = policy(256 * MiB);
    readSeq(p, 0, 16 * MiB);
    const f = p.onRead(16 * MiB, 128 * KiB, 1000);
    for (const x of f) expect(x.priority).toBe(x.position - 16 <= 2 ? 'demand' : 'prefetch');
    expect(f.some((x) => x.priority === 'prefetch')).toBe(true);
  });

  it('tolerates kernel readahead reordering and small skips', () => {
    const p = policy(64 * MiB);
    expect(positions(p.onRead(0, 128 * KiB, 0))).toEqual([1, 2]);
    // Concurrent 128 KiB requests arriving out of order, then a 64 KiB hole.
    for (const o of [384, 128, 256, 640, 512, 832, 768]) p.onRead(o * KiB, 128 * KiB, 1);
    const f = positions(p.onRead(960 * KiB + 64 * KiB, 128 * KiB, 2));
    expect(p.streamStats()).toHaveLength(1);
    expect(p.streamStats()[0]!.sequential).toBe(true);
    // The reader entered chunk 1, a read-ahead chunk: the window doubled to 4 MiB past 1.06 MiB.
    expect(f).toEqual([3, 4, 5]);
    expect(p.windowBytes).toBe(4 * MiB);
  });

  it('random reads start (almost) no read-ahead and never grow a window', () => {
    const p = policy(512 * MiB);
    let x = 12345;
    for (let i = 0; i < 500; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const off = ((x >>> 0) % (500 * 256)) * 4096 + 4096;
      p.onRead(off, 4096, i);
    }
    // Only two reads that happen to land within 256 KiB after a recent one look sequential (2 chunks each).
    expect(p.issued).toBeLessThanOrEqual(10);
    expect(p.windowBytes).toBeLessThanOrEqual(2 * MiB);
    for (const s of p.streamStats()) expect(s.windowBytes).toBe(2 * MiB);
  });

  it('strided reads (4 KiB every 4 MiB) start no read-ahead', () => {
    const p = policy(512 * MiB);
    for (let i = 1; i < 100; i++) expect(p.onRead(i * 4 * MiB, 4096, i)).toEqual([]);
    expect(p.issued).toBe(0);
  });

  it('a seek resets to a fresh stream at the minimum window', () => {
    const p = policy(512 * MiB, { streams: 1 });
    readSeq(p, 0, 40 * MiB);
    expect(p.windowBytes).toBe(32 * MiB);
    expect(p.onRead(300 * MiB, 128 * KiB, 5000)).toEqual([]); // one read at a new place: not yet sequential
    expect(p.windowBytes).toBe(0);
    const f = positions(p.onRead(300 * MiB + 128 * KiB, 128 * KiB, 5001));
    expect(f).toEqual([301, 302]);
    expect(p.windowBytes).toBe(2 * MiB);
  });

  it('two readers on one handle are two streams, both read ahead', () => {
    const p = policy(512 * MiB);
    const a: number[] = [];
    const b: number[] = [];
    let t = 0;
    for (let i = 0; i < 64; i++) {
      for (const [base, out] of [
        [0, a],
        [200 * MiB, b],
      ] as const) {
        const got = positions(p.onRead(base + i * 128 * KiB, 128 * KiB, t++));
        out.push(...got);
        for (const x of got) out.push(...positions(p.onFetchDone(x, true)));
      }
    }
    expect(p.streamStats().filter((s) => s.sequential)).toHaveLength(2);
    expect(a.length).toBeGreaterThan(4);
    expect(b.length).toBeGreaterThan(4);
    expect(a.every((x) => x < 200)).toBe(true);
    expect(b.every((x) => x >= 200)).toBe(true);
    expect(Math.min(...b)).toBe(201);
  });

  it('never has more than maxInFlight fetches out; a completion frees a slot for the next chunk', () => {
    const p = policy(512 * MiB, { inFlight: 3, min: 8 * MiB });
    expect(positions(p.onRead(0, 128 * KiB, 0))).toEqual([1, 2, 3]);
    expect(p.onRead(128 * KiB, 128 * KiB, 1)).toEqual([]);
    expect(p.inFlightCount).toBe(3);
    expect(positions(p.onFetchDone(2, true))).toEqual([4]);
    expect(positions(p.onFetchDone(1, false))).toEqual([5]);
    expect(p.inFlightCount).toBe(3);
  });

  it('deferred fetches (memory bound) are asked again by a later read, and halve the window', () => {
    const p = policy(512 * MiB);
    expect(positions(p.onRead(0, 128 * KiB, 0))).toEqual([1, 2]);
    p.onDeferred([1, 2]);
    expect(p.inFlightCount).toBe(0);
    expect(positions(p.onRead(128 * KiB, 128 * KiB, 1))).toEqual([1, 2]);

    const q = policy(512 * MiB);
    readSeq(q, 0, 20 * MiB);
    expect(q.windowBytes).toBe(32 * MiB);
    q.onDeferred([60]);
    expect(q.windowBytes).toBe(16 * MiB);
    q.onDeferred([60]);
    expect(q.windowBytes).toBe(8 * MiB);
  });

  it('forgets idle streams', () => {
    const p = policy(64 * MiB);
    p.onRead(0, 128 * KiB, 0);
    p.onRead(10 * MiB, 128 * KiB, 60_000);
    expect(p.streamStats()).toHaveLength(1);
  });

  it('does not read past the last chunk', () => {
    const p = policy(5 * MiB + 100);
    const issued = readSeq(p, 0, 5 * MiB + 100);
    expect(Math.max(...issued)).toBe(5);
    expect(p.bytesRead).toBe(5 * MiB + 100);
  });
});
