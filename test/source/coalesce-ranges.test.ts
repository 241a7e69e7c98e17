// RangeCoalescer: reads of one blob asked for together and close together are one request; each caller gets
// exactly its bytes; a far range, another blob or a lone read keeps its own request; one caller's abort
// detaches only that caller.
import { describe, expect, it } from 'vitest';
import { RangeCoalescer } from '../../src/source/coalesce-ranges.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';

const data = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 31) & 0xff));

describe('RangeCoalescer', () => {
  it('merges near ranges asked for in one turn, keeps far ones apart', async () => {
    const inner = new MemoryBlobReader(data);
    const c = new RangeCoalescer();
    const blob = c.wrap(inner);
    const ranges: [number, number][] = [
      [1000, 5000],
      [4000, 9000], // overlaps
      [20_000, 30_000], // gap of 11 000
      [600_000, 601_000], // far
    ];
    const got = await Promise.all(ranges.map(([s, e]) => blob.readRange(s, e)));
    ranges.forEach(([s, e], i) => expect(got[i]!.equals(data.subarray(s, e))).toBe(true));
    expect(inner.rangeCalls).toBe(2);
    expect(c.stats()).toEqual({ requests: 2, merged: 2 });
    // Later turns are not held back for each other.
    await blob.readRange(0, 10);
    await blob.readRange(10, 20);
    expect(inner.rangeCalls).toBe(4);
  });

  it('while a read of the blob is on the wire, reads a little apart wait for each other', async () => {
    const inner = new MemoryBlobReader(data);
    const slow = {
      digest: inner.digest,
      size: () => inner.size(),
      stream: () => inner.stream(),
      readRange: async (s: number, e: number): Promise<Buffer> => {
        await new Promise((r) => setTimeout(r, 50));
        return inner.readRange(s, e);
      },
    };
    const c = new RangeCoalescer();
    const blob = c.wrap(slow);
    const first = blob.readRange(500_000, 501_000); // alone: sent at once
    await new Promise((r) => setImmediate(r));
    const a = blob.readRange(0, 100);
    await new Promise((r) => setImmediate(r)); // a later turn, within the linger
    const b = blob.readRange(100, 200);
    const got = await Promise.all([first, a, b]);
    expect(got[1].equals(data.subarray(0, 100)) && got[2].equals(data.subarray(100, 200))).toBe(true);
    expect(inner.rangeCalls).toBe(2);
    expect(c.stats()).toEqual({ requests: 2, merged: 1 });
  });

  it('an aborted caller stops waiting; the others still get their bytes', async () => {
    const inner = new MemoryBlobReader(data);
    const blob = new RangeCoalescer().wrap(inner);
    const ac = new AbortController();
    const a = blob.readRange(0, 100, ac.signal);
    const b = blob.readRange(100, 200);
    ac.abort();
    await expect(a).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await b).equals(data.subarray(100, 200))).toBe(true);
  });

  it('a failed merged read fails every caller in it', async () => {
    const blob = new RangeCoalescer().wrap(new MemoryBlobReader(data));
    const a = blob.readRange(data.length - 300, data.length - 200);
    const b = blob.readRange(data.length - 100, data.length + 1);
    await expect(a).rejects.toThrow(RangeError);
    await expect(b).rejects.toThrow(RangeError);
  });
});
