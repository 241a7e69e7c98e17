// DiskChunkStore: sharded layout, rebuild after restart, eviction removing files, corruption → miss.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskChunkStore } from '../../src/chunks/disk-chunk-store.js';
import { digestHex, sha256 } from '../../src/image/digest.js';
import { silentLogger } from '../../src/log.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ferry-disk-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const bytes = (n: number, size = 1000): Buffer => Buffer.alloc(size, n);

describe('DiskChunkStore', () => {
  it('stores chunks as <dir>/ab/cdef… with no tmp files left', async () => {
    const dir = tmp();
    const s = new DiskChunkStore({ dir, maxBytes: 1 << 20, log: silentLogger() });
    await s.open();
    const b = bytes(1);
    const d = sha256(b);
    await s.put(d, b);
    const hex = digestHex(d);
    expect(existsSync(join(dir, hex.slice(0, 2), hex.slice(2)))).toBe(true);
    expect(readdirSync(join(dir, hex.slice(0, 2)))).toEqual([hex.slice(2)]);
  });

  it('rebuilds its LRU from disk on open, deleting stray tmp files and ignoring junk', async () => {
    const dir = tmp();
    const s1 = new DiskChunkStore({ dir, maxBytes: 1 << 20, log: silentLogger() });
    await s1.open();
    const ds = [];
    for (let i = 0; i < 5; i++) {
      const b = bytes(i);
      ds.push(sha256(b));
      await s1.put(sha256(b), b);
    }
    const hex = digestHex(ds[0]!);
    const tmpFile = join(dir, hex.slice(0, 2), `${hex.slice(2)}.tmp-123-abcd`);
    writeFileSync(tmpFile, 'partial');
    writeFileSync(join(dir, 'README'), 'not a shard');
    mkdirSync(join(dir, 'zz'));

    const s2 = new DiskChunkStore({ dir, maxBytes: 1 << 20, log: silentLogger() });
    await s2.open();
    expect(existsSync(tmpFile)).toBe(false);
    expect(s2.stats()).toMatchObject({ entries: 5, bytes: 5000 });
    for (const d of ds) expect(s2.has(d)).toBe(true);
    expect((await s2.get(ds[3]!))?.equals(bytes(3))).toBe(true);
  });

  it('evicts by size, oldest first after a restart, and deletes evicted files', async () => {
    const dir = tmp();
    const s1 = new DiskChunkStore({ dir, maxBytes: 1 << 20, log: silentLogger() });
    await s1.open();
    const ds = [];
    for (let i = 0; i < 4; i++) {
      const b = bytes(i);
      const d = sha256(b);
      ds.push(d);
      await s1.put(d, b);
      const h = digestHex(d);
      const t = new Date(1_700_000_000_000 + i * 1000);
      utimesSync(join(dir, h.slice(0, 2), h.slice(2)), t, t);
    }
    const s2 = new DiskChunkStore({ dir, maxBytes: 3000, log: silentLogger() });
    await s2.open(); // 4000 bytes on disk, 3000 allowed: the oldest goes
    await new Promise((r) => setTimeout(r, 50));
    expect(s2.has(ds[0]!)).toBe(false);
    expect(s2.stats().evictions).toBe(1);
    const h0 = digestHex(ds[0]!);
    expect(existsSync(join(dir, h0.slice(0, 2), h0.slice(2)))).toBe(false);
    const b = bytes(9);
    await s2.put(sha256(b), b); // evicts ds[1]
    await new Promise((r) => setTimeout(r, 50));
    expect(s2.has(ds[1]!)).toBe(false);
    expect(s2.stats()).toMatchObject({ entries: 3, bytes: 3000, evictions: 2 });
  });

  it('treats a corrupt file as a miss and deletes it', async () => {
    const dir = tmp();
    const s = new DiskChunkStore({ dir, maxBytes: 1 << 20, log: silentLogger() });
    await s.open();
    const b = bytes(5);
    const d = sha256(b);
    await s.put(d, b);
    const h = digestHex(d);
    const file = join(dir, h.slice(0, 2), h.slice(2));
    writeFileSync(file, Buffer.alloc(1000, 6));
    expect(await s.get(d)).toBeUndefined();
    expect(existsSync(file)).toBe(false);
    expect(s.has(d)).toBe(false);
    expect(s.stats()).toMatchObject({ failures: 1, misses: 1, hits: 0 });
    await s.put(d, b);
    expect((await s.get(d))?.equals(b)).toBe(true);
  });

  it('a chunk larger than the whole store is not written', async () => {
    const dir = tmp();
    const s = new DiskChunkStore({ dir, maxBytes: 100, log: silentLogger() });
    await s.open();
    const b = bytes(1, 1000);
    await s.put(sha256(b), b);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('never throws on put when the directory is unusable', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'file'), 'x');
    const s = new DiskChunkStore({ dir: join(dir, 'file'), maxBytes: 1 << 20, log: silentLogger() });
    const b = bytes(1);
    await expect(s.put(sha256(b), b)).resolves.toBeUndefined();
    expect(s.stats().failures).toBe(1);
    expect(await s.get(sha256(b))).toBeUndefined();
  });
});
