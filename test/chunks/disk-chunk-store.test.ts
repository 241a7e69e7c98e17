// DiskChunkStore: sharded layout, rebuild after restart, eviction removing files, corruption → miss, which
// reads are re-hashed (verifyReads, files changed since written) and positioned reads of parts.
import { webcrypto } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
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
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Counts the store's hashes (it hashes with WebCrypto, off the event loop). */
function countHashes(): { readonly calls: number } {
  const spy = vi.spyOn(webcrypto.subtle, 'digest');
  return {
    get calls() {
      return spy.mock.calls.length;
    },
  };
}

/** A store holding one 1000-byte chunk (bytes that differ along it), its digest and its file. */
async function storeWithChunk(
  verifyReads: boolean,
): Promise<{ s: DiskChunkStore; d: ReturnType<typeof sha256>; b: Buffer; file: string }> {
  const dir = tmp();
  const s = new DiskChunkStore({ dir, maxBytes: 1 << 20, log: silentLogger(), verifyReads });
  await s.open();
  const b = Buffer.alloc(1000);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7) & 0xff;
  const d = sha256(b);
  await s.put(d, b);
  const h = digestHex(d);
  return { s, d, b, file: join(dir, h.slice(0, 2), h.slice(2)) };
}

const T1 = new Date(1_700_000_000_000);
const T2 = new Date(1_700_000_100_000);

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

  it('with verifyReads, treats a corrupt file as a miss and deletes it', async () => {
    const dir = tmp();
    const s = new DiskChunkStore({ dir, maxBytes: 1 << 20, log: silentLogger(), verifyReads: true });
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

  it('serves a chunk as written without hashing it again; verifyReads hashes every read', async () => {
    for (const verifyReads of [false, true]) {
      const { s, d, b } = await storeWithChunk(verifyReads);
      const hashes = countHashes();
      expect((await s.get(d))?.equals(b)).toBe(true);
      expect((await s.get(d))?.equals(b)).toBe(true);
      expect(hashes.calls).toBe(verifyReads ? 2 : 0);
      vi.restoreAllMocks();
    }
  });

  it('with verifyReads on, a corrupt file of the size and mtime it was written with is caught', async () => {
    const { s, d, file } = await storeWithChunk(true);
    utimesSync(file, T1, T1);
    expect(await s.get(d)).toBeDefined(); // learns the new mtime (after hashing the file)
    writeFileSync(file, Buffer.alloc(1000, 9));
    utimesSync(file, T1, T1);
    expect(await s.get(d)).toBeUndefined();
    expect(existsSync(file)).toBe(false);
    expect(s.stats()).toMatchObject({ failures: 1, hits: 1, misses: 1 });
  });

  it('with verifyReads off, the same rewrite is served: that is what the option is for', async () => {
    const { s, d, file } = await storeWithChunk(false);
    utimesSync(file, T1, T1);
    expect(await s.get(d)).toBeDefined();
    writeFileSync(file, Buffer.alloc(1000, 9));
    utimesSync(file, T1, T1);
    expect((await s.get(d))?.equals(Buffer.alloc(1000, 9))).toBe(true);
  });

  it('with verifyReads off, a file whose size changed is hashed, caught and removed', async () => {
    const { s, d, file } = await storeWithChunk(false);
    truncateSync(file, 999);
    const hashes = countHashes();
    expect(await s.getRange(d, 0, 100)).toBeUndefined(); // a part is never served from a changed file
    expect(await s.get(d)).toBeUndefined();
    expect(hashes.calls).toBe(1);
    expect(existsSync(file)).toBe(false);
    expect(s.has(d)).toBe(false);
    expect(s.stats()).toMatchObject({ failures: 1, misses: 1, hits: 0 });
  });

  it('with verifyReads off, a file whose mtime changed is hashed: caught if corrupt, else served', async () => {
    const good = await storeWithChunk(false);
    utimesSync(good.file, T2, T2);
    const hashes = countHashes();
    expect((await good.s.get(good.d))?.equals(good.b)).toBe(true);
    expect(hashes.calls).toBe(1);
    expect((await good.s.get(good.d))?.equals(good.b)).toBe(true); // the new mtime was learnt
    expect(hashes.calls).toBe(1);
    expect((await good.s.getRange(good.d, 10, 5))?.equals(good.b.subarray(10, 15))).toBe(true);

    const bad = await storeWithChunk(false);
    writeFileSync(bad.file, Buffer.alloc(1000, 9));
    utimesSync(bad.file, T2, T2);
    expect(await bad.s.getRange(bad.d, 0, 100)).toBeUndefined();
    expect(await bad.s.get(bad.d)).toBeUndefined();
    expect(existsSync(bad.file)).toBe(false);
    expect(bad.s.stats()).toMatchObject({ failures: 1 });
  });

  it('serves parts by positioned reads, without hashing; not with verifyReads on', async () => {
    const { s, d, b } = await storeWithChunk(false);
    const hashes = countHashes();
    expect((await s.getRange(d, 0, 10))?.equals(b.subarray(0, 10))).toBe(true);
    expect((await s.getRange(d, 990, 10))?.equals(b.subarray(990))).toBe(true);
    expect((await s.getRange(d, 123, 456))?.equals(b.subarray(123, 579))).toBe(true);
    expect(await s.getRange(d, 990, 11)).toBeUndefined(); // past the chunk's end
    expect(await s.getRange(sha256(Buffer.from('absent')), 0, 1)).toBeUndefined();
    expect(hashes.calls).toBe(0);
    expect(s.stats()).toMatchObject({ hits: 3, hitBytes: 476 });

    const checked = await storeWithChunk(true);
    expect(await checked.s.getRange(checked.d, 0, 10)).toBeUndefined();
  });

  it('hashes a chunk found by open() on its first read (a crash may have torn it), then trusts it', async () => {
    const { s, d, b, file } = await storeWithChunk(false);
    const s2 = new DiskChunkStore({ dir: s.dir, maxBytes: 1 << 20, log: silentLogger() });
    await s2.open();
    const hashes = countHashes();
    expect(await s2.getRange(d, 5, 5)).toBeUndefined(); // not hashed by this process yet
    expect((await s2.get(d))?.equals(b)).toBe(true);
    expect(hashes.calls).toBe(1);
    expect((await s2.get(d))?.equals(b)).toBe(true);
    expect((await s2.getRange(d, 5, 5))?.equals(b.subarray(5, 10))).toBe(true);
    expect(hashes.calls).toBe(1);

    // Torn while no store ran: found by open() at its torn size, caught by the first read's hash.
    truncateSync(file, 10);
    const s3 = new DiskChunkStore({ dir: s.dir, maxBytes: 1 << 20, log: silentLogger() });
    await s3.open();
    expect(await s3.getRange(d, 0, 5)).toBeUndefined();
    expect(await s3.get(d)).toBeUndefined();
    expect(existsSync(file)).toBe(false);
  });
});
