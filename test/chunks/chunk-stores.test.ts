// Contract tests shared by all ChunkStores, plus memory-LRU eviction and tiered promotion.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { markExclusive, type ChunkStore } from '../../src/chunks/chunk-store.js';
import { DiskChunkStore } from '../../src/chunks/disk-chunk-store.js';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { TieredChunkStore } from '../../src/chunks/tiered-chunk-store.js';
import { sha256 } from '../../src/image/digest.js';
import { silentLogger } from '../../src/log.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ferry-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function chunk(n: number, size = 1000): { d: ReturnType<typeof sha256>; b: Buffer } {
  const b = Buffer.alloc(size, n);
  b.writeUInt32BE(n, 0);
  return { d: sha256(b), b };
}

const makers: [string, () => Promise<ChunkStore>][] = [
  ['memory', () => Promise.resolve(new MemoryChunkStore({ maxBytes: 1 << 20 }))],
  [
    'disk',
    async () => {
      const s = new DiskChunkStore({ dir: tmp(), maxBytes: 1 << 20, log: silentLogger() });
      await s.open();
      return s;
    },
  ],
  [
    'tiered',
    async () => {
      const disk = new DiskChunkStore({ dir: tmp(), maxBytes: 1 << 20, log: silentLogger() });
      await disk.open();
      return new TieredChunkStore({ memory: new MemoryChunkStore({ maxBytes: 1 << 16 }), disk });
    },
  ],
];

describe.each(makers)('%s ChunkStore contract', (_name, make) => {
  it('misses with undefined, then returns what was put', async () => {
    const s = await make();
    const { d, b } = chunk(1);
    expect(await s.get(d)).toBeUndefined();
    expect(await s.has(d)).toBe(false);
    await s.put(d, b);
    expect(await s.has(d)).toBe(true);
    expect((await s.get(d))?.equals(b)).toBe(true);
    const st = s.stats();
    expect(st.hits).toBe(1);
    expect(st.misses).toBe(1);
    expect(st.hitBytes).toBe(1000);
    expect(st.bytes).toBeGreaterThanOrEqual(1000);
  });

  it('keeps a copy, not a view pinning a larger buffer', async () => {
    const s = await make();
    const parent = Buffer.alloc(10_000, 7);
    const view = parent.subarray(100, 600);
    await s.put(sha256(view), view);
    const got = await s.get(sha256(view));
    expect(got?.equals(view)).toBe(true);
    expect(got?.buffer.byteLength).toBe(500);
  });
});

describe('MemoryChunkStore', () => {
  it('evicts least-recently-used chunks by bytes', async () => {
    const s = new MemoryChunkStore({ maxBytes: 3000 });
    const [a, b, c, d] = [chunk(1), chunk(2), chunk(3), chunk(4)];
    await s.put(a.d, a.b);
    await s.put(b.d, b.b);
    await s.put(c.d, c.b);
    await s.get(a.d); // a is now most recent; b is the LRU
    await s.put(d.d, d.b);
    expect(s.has(b.d)).toBe(false);
    expect(s.has(a.d) && s.has(c.d) && s.has(d.d)).toBe(true);
    expect(s.stats()).toMatchObject({ evictions: 1, bytes: 3000, entries: 3 });
  });
});

describe('MemoryChunkStore buffers', () => {
  it('keeps a view that fills most of its buffer without a copy, and counts the whole buffer', async () => {
    const s = new MemoryChunkStore({ maxBytes: 1 << 20 });
    // A decoded chunk as a decode worker sends it: zlib's output with a little slack past the chunk.
    const parent = Buffer.allocUnsafeSlow(64 * 1024 + 4096).fill(9);
    const view = parent.subarray(0, 64 * 1024);
    markExclusive(view);
    await s.put(sha256(view), view);
    const got = await s.get(sha256(view));
    expect(got?.buffer).toBe(parent.buffer);
    expect(s.stats().bytes).toBe(parent.length);
  });

  it('copies a view of a buffer someone else may write again (a decoder reuses its output buffer)', async () => {
    const s = new MemoryChunkStore({ maxBytes: 1 << 20 });
    const reused = Buffer.allocUnsafeSlow(128 * 1024).fill(1);
    const view = reused.subarray(0, 120 * 1024);
    const digest = sha256(view);
    await s.put(digest, view);
    reused.fill(2); // the decoder's next output
    const got = await s.get(digest);
    expect(got && sha256(got)).toBe(digest);
  });
});

describe('TieredChunkStore', () => {
  it('promotes disk hits into memory and reports per-tier stats', async () => {
    const disk = new DiskChunkStore({ dir: tmp(), maxBytes: 1 << 20, log: silentLogger() });
    await disk.open();
    const memory = new MemoryChunkStore({ maxBytes: 1 << 20 });
    const { d, b } = chunk(9);
    await disk.put(d, b);
    const t = new TieredChunkStore({ memory, disk });
    expect((await t.get(d))?.equals(b)).toBe(true);
    expect(memory.has(d)).toBe(true);
    expect((await t.get(d))?.equals(b)).toBe(true);
    const tiers = t.tiers();
    expect(tiers['disk']?.hits).toBe(1);
    expect(tiers['memory']?.hits).toBe(1);
    expect(t.stats().hits).toBe(2);
  });
});
