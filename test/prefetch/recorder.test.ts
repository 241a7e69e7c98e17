// TraceRecorder: first access only, window and quiet cut-offs, ordering, bounds, and never throwing.
import { describe, expect, it } from 'vitest';
import { TraceRecorder } from '../../src/prefetch/recorder.js';
import type { Trace } from '../../src/prefetch/trace.js';
import { fakeIndex, MANIFEST } from './fixtures.js';

const a = fakeIndex('a', 10);
const b = fakeIndex('b', 10);

function recorder(over: Partial<ConstructorParameters<typeof TraceRecorder>[0]> = {}) {
  let now = 0;
  const done: Trace[] = [];
  const r = new TraceRecorder({
    manifestDigest: MANIFEST,
    windowMs: 30_000,
    quietMs: 5_000,
    maxEntries: 1000,
    now: () => now,
    onComplete: (t) => done.push(t),
    ...over,
  });
  return { r, done, setNow: (t: number) => (now = t) };
}

describe('TraceRecorder', () => {
  it('keeps only the first access of each chunk, ordered by first access, relative to the first read', () => {
    const { r } = recorder();
    r.record(a, 3, 100);
    r.record(b, 1, 150);
    r.record(a, 3, 200); // repeat: ignored
    r.record(a, 0, 250);
    r.record(b, 1, 300); // repeat
    const t = r.finish()!;
    expect(t.entries.map((e) => [e.layerDigest, e.chunkIndex, e.firstAccessMs])).toEqual([
      [a.layerDigest, 3, 0],
      [b.layerDigest, 1, 50],
      [a.layerDigest, 0, 150],
    ]);
    expect(t.entries[0]!.chunkDigest).toBe(a.chunks[3]!.digest);
    expect(t.entries[0]!.size).toBe(1000);
    expect(t.manifestDigest).toBe(MANIFEST);
    expect(t.durationMs).toBe(200);
  });

  it('closes when a read arrives after the window', () => {
    const { r, done } = recorder({ windowMs: 1000, quietMs: 10_000 });
    r.record(a, 0, 0);
    r.record(a, 1, 600);
    r.record(a, 2, 999);
    expect(r.state).toBe('recording');
    r.record(a, 3, 1001);
    expect(r.state).toBe('closed');
    r.record(a, 4, 1002);
    expect(done).toHaveLength(1);
    expect(done[0]!.entries.map((e) => e.chunkIndex)).toEqual([0, 1, 2]);
  });

  it('closes when reads go quiet, both on the next read and from the poll timer', () => {
    const one = recorder({ quietMs: 500 });
    one.r.record(a, 0, 10);
    one.r.record(a, 1, 400);
    one.r.record(a, 2, 1000); // 600 ms of silence before it
    expect(one.done[0]!.entries.map((e) => e.chunkIndex)).toEqual([0, 1]);

    const two = recorder({ quietMs: 500 });
    two.setNow(1000);
    two.r.record(a, 0, 10);
    two.setNow(1400);
    two.r.poll();
    expect(two.r.state).toBe('recording');
    two.setNow(1600);
    two.r.poll();
    expect(two.r.state).toBe('closed');
    expect(two.done).toHaveLength(1);
  });

  it('waits for the first read before counting quiet time', () => {
    const { r, setNow } = recorder({ quietMs: 100 });
    setNow(60_000);
    r.poll();
    expect(r.state).toBe('waiting');
    r.record(a, 0, 60_000);
    expect(r.state).toBe('recording');
  });

  it('bounds the entries and reports nothing for a start that read nothing', () => {
    const { r } = recorder({ maxEntries: 3 });
    for (let i = 0; i < 10; i++) r.record(a, i, i);
    expect(r.finish()!.entries).toHaveLength(3);
    const empty = recorder();
    expect(empty.r.finish()).toBeUndefined();
    expect(empty.done).toHaveLength(0);
  });

  it('never throws on the read path, even when onComplete throws or input is nonsense', () => {
    const { r } = recorder({
      quietMs: 1,
      onComplete: () => {
        throw new Error('boom');
      },
    });
    expect(() => r.record(a, 999, 0)).not.toThrow();
    expect(() => r.record(a, 0, 50)).not.toThrow(); // closes → onComplete throws → swallowed
    expect(() => r.record(null as unknown as typeof a, 0, 60)).not.toThrow();
    expect(r.state).toBe('closed');
  });

  it('records a 100k-read burst quickly (O(1) per read)', () => {
    const big = fakeIndex('big', 5000);
    const { r } = recorder({ maxEntries: 100_000 });
    const t0 = performance.now();
    for (let i = 0; i < 100_000; i++) r.record(big, i % 5000, i / 100);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(r.finish()!.entries).toHaveLength(5000);
  });
});
