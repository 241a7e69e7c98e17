// The raw FUSE server over real generated layers (GNU tar corpus, real index builder): every answer decoded and
// checked against the files on disk, and a successor server (index persisted and reloaded) that continues what
// its predecessor started: READ by an fh it never issued, a listing from a mid-way offset.
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EACCES, EIO, EISDIR, ENODATA, ENOENT, ENOTDIR, ERANGE, EROFS } from '../../src/fuse/errno.js';
import { createRawLayerServer, type RawLayerServer } from '../../src/fuse/raw/layer-server.js';
import { FOPEN_CACHE_DIR, FOPEN_KEEP_CACHE, InitFlag, Opcode } from '../../src/fuse/raw/protocol.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { deserializeIndex, serializeIndex } from '../../src/index/serialize.js';
import { LayerReader } from '../../src/layer/layer-reader.js';
import { ReadAheadBudget } from '../../src/layer/read-ahead-budget.js';
import { DEFAULT_READ_AHEAD_SETTINGS } from '../../src/layer/read-ahead.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { silentLogger } from '../../src/log.js';
import type { ChunkSource } from '../../src/source/chunk-source.js';
import { makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { RawClient, decodeDirents, decodeEntry, type Dirent } from './raw-requests.js';
import { fuseTimings } from '../helpers/fuse-timings.js';

const MiB = 1024 * 1024;
let work: string;
let corpus: CorpusLayer[];
const indexes: LayerIndex[] = [];

/** The identity codec's chunk bytes straight from the tar (what the origin fetch would return). */
function tarSource(tar: Buffer, delayMs = 0): ChunkSource {
  return {
    fetch: async (q) => {
      const c = q.index.chunks[q.chunk]!;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return tar.subarray(c.compressedStart + c.skip, c.compressedStart + c.skip + c.size);
    },
  };
}

function serverFor(
  i: number,
  index = indexes[i]!,
  extra: { readDeadlineMs?: number; delayMs?: number } = {},
) {
  const reader = new LayerReader({
    index,
    source: tarSource(corpus[i]!.tar, extra.delayMs),
    readAhead: { settings: DEFAULT_READ_AHEAD_SETTINGS, budget: new ReadAheadBudget({ maxBytes: 64 * MiB }) },
  });
  const server: RawLayerServer = createRawLayerServer({
    tree: LayerTree.fromIndex(index),
    reader,
    log: silentLogger(),
    timings: fuseTimings({
      attrTimeoutMs: 3000,
      entryTimeoutMs: 4000,
      negativeTimeoutMs: 5000,
      ...(extra.readDeadlineMs !== undefined ? { readDeadlineMs: extra.readDeadlineMs } : {}),
    }),
  });
  return { server, client: new RawClient(server), reader };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ferry-raw-'));
  corpus = makeCorpus(work, { smallFiles: 300, bigFileBytes: 3 * MiB + 5 });
  for (const layer of corpus.slice(0, 2)) {
    const blob = new MemoryBlobReader(layer.tar);
    const index = await buildIndexFromStream({
      layerDigest: blob.digest,
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      blob,
    });
    expect(index.codec).toBe('identity');
    indexes.push(index);
  }
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('LayerTree by inode', () => {
  it('node(ino) finds every visible node; parentOf gives each directory its parent', () => {
    const tree = LayerTree.fromIndex(indexes[0]!);
    let dirs = 0;
    for (const [path, node] of tree.paths()) {
      expect(tree.node(node.ino)).toBe(node);
      if (node.type !== 'dir' || path === '') continue;
      dirs++;
      const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
      expect(tree.parentOf(node.ino)).toBe(tree.lookup(parent)!.ino);
    }
    expect(dirs).toBeGreaterThan(10);
    expect([tree.parentOf(1), tree.node(1)]).toEqual([1, tree.root]);
    expect([tree.node(0), tree.node(10 ** 9), tree.parentOf(10 ** 9)]).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
  });
});

describe('raw FUSE server on the base corpus layer', () => {
  it('answers INIT with minor 31, 1 MiB reads and only flags the kernel offered', async () => {
    const { server, client } = serverFor(0);
    const init = Buffer.alloc(64);
    [7, 45, 4 * MiB, 0x7fffffff].forEach((v, i) => init.writeUInt32LE(v, i * 4));
    const r = await client.send(Opcode.INIT, 0, init);
    expect(r.error).toBe(0);
    expect([r.body.readUInt32LE(0), r.body.readUInt32LE(4), r.body.readUInt32LE(8)]).toEqual([7, 31, MiB]);
    expect(r.body.readUInt32LE(12) & InitFlag.MAX_PAGES).toBe(InitFlag.MAX_PAGES);
    expect([r.body.readUInt32LE(20), r.body.readUInt16LE(28)]).toEqual([4096, 256]);
    expect(server.kernelInit()?.minor).toBe(45);
  });

  it('LOOKUP walks to inode numbers of the tree with the stat of the file; misses are negative entries', async () => {
    const { client } = serverFor(0);
    const tree = LayerTree.fromIndex(indexes[0]!);
    const tool = await client.walk('usr/bin/tool');
    expect(tool.nodeid).toBe(tree.lookup('usr/bin/tool')!.ino);
    expect([tool.entryValidSec, tool.attrValidSec]).toEqual([4, 3]);
    expect(tool.attr).toMatchObject({ mode: 0o104755, size: 70_000, nlink: 2, ino: tool.nodeid });
    expect((await client.walk('usr/bin/tool-hardlink')).nodeid).toBe(tool.nodeid);
    expect((await client.walk('srv/owned')).attr).toMatchObject({ mode: 0o100640, uid: 1000, gid: 2000 });
    expect((await client.walk('tmp')).attr.mode).toBe(0o41777);
    expect((await client.walk('srv/null-dev')).attr).toMatchObject({ mode: 0o20644, rdev: 0x103 });
    expect((await client.walk('srv/fifo')).attr.mode & 0o170000).toBe(0o010000);
    const miss = await client.lookup(1, 'no-such-name');
    expect(miss.error).toBe(0);
    expect(decodeEntry(miss.body)).toMatchObject({ nodeid: 0, entryValidSec: 5 });
    expect((await client.lookup(tool.nodeid, 'x')).error).toBe(ENOTDIR);
    expect((await client.lookup(999_999, 'x')).error).toBe(ENOENT);
    const attr = await client.send(Opcode.GETATTR, tool.nodeid, Buffer.alloc(16));
    expect(attr.error).toBe(0);
    expect(Number(attr.body.readBigUInt64LE(0))).toBe(3);
    expect(attr.body.readUInt32LE(16 + 60)).toBe(0o104755);
  });

  it('READDIRPLUS and READDIR list ., .., then the children with stable offsets, across pages', async () => {
    const { client } = serverFor(0);
    const usr = await client.walk('usr/bin');
    const tree = LayerTree.fromIndex(indexes[0]!);
    const names = ['.', '..', ...tree.lookup('usr/bin')!.children!.keys()];
    for (const plus of [true, false]) {
      const all = await client.listAll(usr.nodeid, plus, 400); // 400 bytes: two direntplus a page
      expect(all.map((d) => d.name)).toEqual(names);
      expect(all.map((d) => d.off)).toEqual(names.map((_, i) => i + 1));
      expect(all[1]!.ino).toBe(tree.lookup('usr')!.ino);
      const tool = all.find((d) => d.name === 'tool')!;
      expect(tool.type).toBe(8); // DT_REG
      if (plus) expect(tool.entry?.attr).toMatchObject({ mode: 0o104755, size: 70_000, ino: tool.ino });
      expect(all.find((d) => d.name === 'tool-symlink')!.type).toBe(10); // DT_LNK
    }
    expect((await client.listAll(1, false)).map((d) => d.name)).toContain('srv');
    expect((await client.listAll(1, false))[1]!.ino).toBe(1); // the root's .. is itself
  });

  it('READ returns the file bytes for 1 MiB and unaligned requests; EOF is short', async () => {
    const { client } = serverFor(0);
    const want = readFileSync(join(corpus[0]!.dir, 'usr/lib/big-random.bin'));
    const f = await client.walk('usr/lib/big-random.bin');
    const { fh, error, body } = await client.open(f.nodeid);
    expect(error).toBe(0);
    expect(body.readUInt32LE(8)).toBe(FOPEN_KEEP_CACHE);
    const parts: Buffer[] = [];
    for (let off = 0; off < want.length; off += MiB) {
      const r = await client.read(Opcode.READ, f.nodeid, fh, off, MiB);
      expect(r.error).toBe(0);
      parts.push(Buffer.from(r.body));
    }
    expect(Buffer.concat(parts).equals(want)).toBe(true);
    const odd = await client.read(Opcode.READ, f.nodeid, fh, MiB - 3, 70_001);
    expect(odd.body.equals(want.subarray(MiB - 3, MiB - 3 + 70_001))).toBe(true);
    expect((await client.read(Opcode.READ, f.nodeid, fh, want.length + 10, 100)).body.length).toBe(0);
    expect((await client.release(f.nodeid, fh)).error).toBe(0);
  });

  it('READLINK, xattrs with size probes and ERANGE, STATFS, ACCESS, write opens and dirs', async () => {
    const { client } = serverFor(0);
    const link = await client.walk('etc/dangling');
    expect((await client.send(Opcode.READLINK, link.nodeid)).body.toString()).toBe(
      readlinkSync(join(corpus[0]!.dir, 'etc/dangling')),
    );
    const x = (await client.walk('srv/xattr-file')).nodeid;
    const probe = await client.listxattr(x, 0);
    const list = await client.listxattr(x, 1024);
    expect(probe.body.readUInt32LE(0)).toBe(list.body.length);
    expect(list.body.toString().split('\0').filter(Boolean).sort()).toEqual([
      'user.ferry.bin',
      'user.ferry.test',
    ]);
    expect((await client.listxattr(x, 3)).error).toBe(ERANGE);
    expect((await client.getxattr(x, 'user.ferry.bin', 0)).body.readUInt32LE(0)).toBe(3);
    expect((await client.getxattr(x, 'user.ferry.bin', 64)).body.toString('hex')).toBe('00ff10');
    expect((await client.getxattr(x, 'user.ferry.bin', 2)).error).toBe(ERANGE);
    expect((await client.getxattr(x, 'user.none', 64)).error).toBe(ENODATA);
    const statfs = await client.send(Opcode.STATFS, 1);
    expect([statfs.body.length, statfs.body.readUInt32LE(40), statfs.body.readUInt32LE(44)]).toEqual([
      80, 4096, 255,
    ]);
    const access = (mask: number): Promise<number> =>
      client.send(Opcode.ACCESS, x, Buffer.from([mask, 0, 0, 0, 0, 0, 0, 0])).then((r) => r.error);
    expect([await access(4), await access(2)]).toEqual([0, EROFS]);
    expect((await client.open(x, 1)).error).toBe(EROFS);
    expect((await client.open(x, 0o1000)).error).toBe(EROFS);
    expect((await client.open(1, 0)).error).toBe(EISDIR);
    const dir = await client.send(Opcode.OPENDIR, 1, Buffer.alloc(8));
    expect(dir.body.readUInt32LE(8)).toBe(FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE);
    expect((await client.send(Opcode.OPENDIR, x, Buffer.alloc(8))).error).toBe(ENOTDIR);
  });

  it('a missed read deadline answers EIO; after close() every request answers EIO', async () => {
    const { server, client } = serverFor(0, indexes[0], { readDeadlineMs: 30, delayMs: 300 });
    const f = await client.walk('etc/hostname');
    expect((await client.read(Opcode.READ, f.nodeid, 1, 0, 100)).error).toBe(EIO);
    expect(server.errors.failures).toBe(1);
    const slow = serverFor(0, indexes[0], { delayMs: 300 });
    const pending = slow.client.read(Opcode.READ, f.nodeid, 1, 0, 100);
    slow.server.close();
    expect((await pending).error).toBe(EIO);
    expect((await slow.client.send(Opcode.GETATTR, 1, Buffer.alloc(16))).error).toBe(EIO);
  });
});

describe('raw FUSE server on the upper corpus layer', () => {
  it('whiteouts are char 0/0; opaque dirs answer both xattr names and list only trusted', async () => {
    const { client } = serverFor(1);
    const wh = await client.walk('etc/removed.conf');
    expect(wh.attr).toMatchObject({ mode: 0o20000, rdev: 0, size: 0 });
    expect((await client.open(wh.nodeid)).error).toBe(EACCES);
    const etc = await client.listAll((await client.walk('etc')).nodeid, true);
    expect(etc.find((d) => d.name === 'removed.conf')?.type).toBe(2); // DT_CHR
    expect(etc.some((d) => d.name.startsWith('.wh.'))).toBe(false);
    const opq = (await client.walk('opt/app')).nodeid;
    for (const name of ['trusted.overlay.opaque', 'user.overlay.opaque'])
      expect((await client.getxattr(opq, name, 8)).body.toString()).toBe('y');
    expect((await client.listxattr(opq, 256)).body.toString()).toBe('trusted.overlay.opaque\0');
    const plain = (await client.walk('etc')).nodeid;
    expect((await client.getxattr(plain, 'trusted.overlay.opaque', 8)).error).toBe(ENODATA);
  });
});

describe('a successor server from the persisted index', () => {
  it('reads through a handle it never issued and continues a listing mid-way', async () => {
    const first = serverFor(0);
    const reloaded = deserializeIndex(serializeIndex(indexes[0]!), indexes[0]!.layerDigest);
    const next = serverFor(0, reloaded);
    next.server.adopt(undefined);
    const want = readFileSync(join(corpus[0]!.dir, 'usr/lib/big-text.txt'));
    const f = await first.client.walk('usr/lib/big-text.txt');
    const { fh } = await first.client.open(f.nodeid);
    expect(fh).toBeGreaterThan(2 ** 32); // random prefix above the counter
    const r = await next.client.read(Opcode.READ, f.nodeid, fh, 2 * MiB, MiB);
    expect(r.body.equals(want.subarray(2 * MiB, 3 * MiB))).toBe(true);
    expect(next.server.openHandles()).toBe(1);
    const own = await next.client.open(f.nodeid);
    expect(own.fh).not.toBe(fh);
    expect((await next.client.release(f.nodeid, fh)).error).toBe(0);
    expect(next.server.openHandles()).toBe(1);

    const dir = (await first.client.walk('usr/share/data/001')).nodeid;
    const r1 = await first.client.read(Opcode.READDIRPLUS, dir, 0, 0, 1024);
    const page: Dirent[] = decodeDirents(r1.body, true);
    expect(page.length).toBeGreaterThan(2);
    const rest = await next.client.listAll(dir, true, 4096, page.at(-1)!.off);
    const whole = await first.client.listAll(dir, true);
    expect([...page, ...rest].map((d) => [d.name, d.off, d.ino])).toEqual(
      whole.map((d) => [d.name, d.off, d.ino]),
    );
    expect(whole.length).toBe(102);
  });
});
