// FUSE protocol codecs against the struct layouts of linux/fuse.h (sizes and offsets checked with offsetof
// on this machine's header), and the raw server's robustness: no request bytes make handle() throw or reject.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import type { NodeStat } from '../../src/fuse/attrs.js';
import { EINVAL, ENOSYS } from '../../src/fuse/errno.js';
import { createRawLayerServer } from '../../src/fuse/raw/layer-server.js';
import { initReply } from '../../src/fuse/raw/negotiate.js';
import {
  IN_HEADER_BYTES,
  InitFlag,
  Opcode,
  REQUEST_BUFFER_BYTES,
  decodeAccessIn,
  decodeGetxattrIn,
  decodeInHeader,
  decodeInitIn,
  decodeListxattrIn,
  decodeName,
  decodeOpenIn,
  decodeReadIn,
  decodeReleaseIn,
  encodeInHeader,
  encodeNotifyResend,
  encodeReply,
  replyBytes,
  requestBody,
} from '../../src/fuse/raw/protocol.js';
import {
  DirentWriter,
  encodeAttrOut,
  encodeEntryOut,
  encodeGetxattrOut,
  encodeInitOut,
  encodeOpenOut,
  encodeStatfsOut,
} from '../../src/fuse/raw/protocol-replies.js';
import { buildIdentityLayer, identityReader } from '../helpers/identity-layer.js';
import { fuseTimings } from '../helpers/fuse-timings.js';

const stat: NodeStat = {
  ino: 0x0102030405,
  size: 0x1122334455,
  blocks: 77,
  atime: 1_700_000_000_123,
  mtime: 1_700_000_001_456,
  ctime: 1_700_000_002_789,
  mode: 0o100644,
  nlink: 3,
  uid: 1000,
  gid: 2000,
  rdev: 0x103,
  blksize: 4096,
  dev: 0,
};

/** Checks a fuse_attr at `at` field by field (offsets from offsetof on linux/fuse.h). */
function expectAttr(b: Buffer, at: number): void {
  expect(b.readBigUInt64LE(at)).toBe(0x0102030405n);
  expect(b.readBigUInt64LE(at + 8)).toBe(0x1122334455n);
  expect(b.readBigUInt64LE(at + 16)).toBe(77n);
  expect(b.readBigUInt64LE(at + 24)).toBe(1_700_000_000n);
  expect(b.readBigUInt64LE(at + 32)).toBe(1_700_000_001n);
  expect(b.readBigUInt64LE(at + 40)).toBe(1_700_000_002n);
  expect([b.readUInt32LE(at + 48), b.readUInt32LE(at + 52), b.readUInt32LE(at + 56)]).toEqual([
    123_000_000, 456_000_000, 789_000_000,
  ]);
  expect(b.readUInt32LE(at + 60)).toBe(0o100644);
  expect(b.readUInt32LE(at + 64)).toBe(3);
  expect(b.readUInt32LE(at + 68)).toBe(1000);
  expect(b.readUInt32LE(at + 72)).toBe(2000);
  expect(b.readUInt32LE(at + 76)).toBe(0x103);
  expect(b.readUInt32LE(at + 80)).toBe(4096);
  expect(b.readUInt32LE(at + 84)).toBe(0);
}

describe('FUSE protocol encoders', () => {
  it('out header: len, negative errno, unique', () => {
    const r = encodeReply(0xfedcba9876543210n, -2, Buffer.from('abc'));
    expect(r.length).toBe(19);
    expect([r.readUInt32LE(0), r.readInt32LE(4), r.readBigUInt64LE(8)]).toEqual([
      19,
      -2,
      0xfedcba9876543210n,
    ]);
    expect(r.subarray(16).toString()).toBe('abc');
  });

  it('fuse_entry_out is 128 bytes with the attr at 40; a negative entry is nodeid 0 with its timeout', () => {
    const e = encodeEntryOut(42, { entryValidSec: 5.5, attrValidSec: 7 }, stat);
    expect(e.length).toBe(128);
    expect(e.readBigUInt64LE(0)).toBe(42n);
    expect(e.readBigUInt64LE(8)).toBe(0n); // generation
    expect([e.readBigUInt64LE(16), e.readBigUInt64LE(24)]).toEqual([5n, 7n]);
    expect([e.readUInt32LE(32), e.readUInt32LE(36)]).toEqual([500_000_000, 0]);
    expectAttr(e, 40);
    const neg = encodeEntryOut(0, { entryValidSec: 30, attrValidSec: 0 }, undefined);
    expect(neg.readBigUInt64LE(0)).toBe(0n);
    expect(neg.readBigUInt64LE(16)).toBe(30n);
    expect(neg.subarray(40).every((x) => x === 0)).toBe(true);
  });

  it('fuse_attr_out is 104 bytes with the attr at 16', () => {
    const a = encodeAttrOut(2, stat);
    expect(a.length).toBe(104);
    expect(a.readBigUInt64LE(0)).toBe(2n);
    expectAttr(a, 16);
  });

  it('fuse_open_out, fuse_getxattr_out, fuse_statfs_out', () => {
    const o = encodeOpenOut(2 ** 52 + 5, 0b1010);
    expect([o.length, o.readBigUInt64LE(0), o.readUInt32LE(8)]).toEqual([16, 2n ** 52n + 5n, 0b1010]);
    const g = encodeGetxattrOut(123);
    expect([g.length, g.readUInt32LE(0)]).toEqual([8, 123]);
    const s = encodeStatfsOut({
      blocks: 1,
      bfree: 2,
      bavail: 3,
      files: 4,
      ffree: 5,
      favail: 6,
      bsize: 4096,
      namemax: 255,
      frsize: 512,
      fsid: 0,
      flag: 1,
    });
    expect(s.length).toBe(80);
    expect([0, 8, 16, 24, 32].map((at) => s.readBigUInt64LE(at))).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect([s.readUInt32LE(40), s.readUInt32LE(44), s.readUInt32LE(48)]).toEqual([4096, 255, 512]);
  });

  it('fuse_init_out is 64 bytes with max_pages at 28', () => {
    const i = encodeInitOut({
      major: 7,
      minor: 31,
      maxReadaheadBytes: 1 << 20,
      flags: 0x80000001,
      maxBackground: 64,
      congestionThreshold: 48,
      maxWriteBytes: 4096,
      timeGranNs: 1,
      maxPages: 256,
    });
    expect(i.length).toBe(64);
    expect([i.readUInt32LE(0), i.readUInt32LE(4), i.readUInt32LE(8), i.readUInt32LE(12)]).toEqual([
      7,
      31,
      1 << 20,
      0x80000001,
    ]);
    expect([i.readUInt16LE(16), i.readUInt16LE(18), i.readUInt32LE(20), i.readUInt32LE(24)]).toEqual([
      64, 48, 4096, 1,
    ]);
    expect(i.readUInt16LE(28)).toBe(256);
  });

  it('INIT answer: only offered flags, readahead capped, max_write fits the request buffer', () => {
    const offered = 0x7fffffff & ~InitFlag.PARALLEL_DIROPS;
    const r = initReply(
      { major: 7, minor: 45, maxReadahead: 4 << 20, flags: offered, flags2: 0 },
      512 * 1024,
    );
    expect(r.readUInt32LE(4)).toBe(31);
    expect(r.readUInt32LE(8)).toBe(512 * 1024);
    const flags = r.readUInt32LE(12);
    expect(flags & InitFlag.PARALLEL_DIROPS).toBe(0);
    for (const f of [
      InitFlag.ASYNC_READ,
      InitFlag.MAX_PAGES,
      InitFlag.DO_READDIRPLUS,
      InitFlag.CACHE_SYMLINKS,
    ])
      expect(flags & f).toBe(f);
    expect(REQUEST_BUFFER_BYTES).toBeGreaterThanOrEqual(Math.max(8192, 40 + 40 + r.readUInt32LE(20)));
    // Ours, not the kernel's smaller offer: the kernel keeps the smaller of this and its bdi setting, which
    // setReadAhead() raises.
    expect(initReply({ major: 7, minor: 45, maxReadahead: 65536, flags: 0, flags2: 0 }).readUInt32LE(8)).toBe(
      1 << 20,
    );
  });

  it('dirents are 24 + name rounded to 8; direntplus put a 128-byte entry_out first', () => {
    const w = new DirentWriter(4096, false);
    expect(w.add('abc', 1, stat)).toBe(true);
    expect(w.add('12345678', 2, { ...stat, mode: 0o40755 })).toBe(true);
    const b = w.bytes;
    expect(b.length).toBe(32 + 32);
    expect([b.readBigUInt64LE(0), b.readBigUInt64LE(8), b.readUInt32LE(16), b.readUInt32LE(20)]).toEqual([
      BigInt(stat.ino),
      1n,
      3,
      8, // DT_REG
    ]);
    expect(b.toString('utf8', 24, 27)).toBe('abc');
    expect(b.subarray(27, 32).every((x) => x === 0)).toBe(true);
    expect([b.readBigUInt64LE(40), b.readUInt32LE(52)]).toEqual([2n, 4]); // DT_DIR
    const p = new DirentWriter(4096, true);
    p.add('x', 9, stat, { entryValidSec: 1, attrValidSec: 2 });
    const pb = p.bytes;
    expect(pb.length).toBe(160); // 152 + 1 rounded up
    expect(pb.readBigUInt64LE(0)).toBe(BigInt(stat.ino));
    expectAttr(pb, 40);
    expect([pb.readBigUInt64LE(136), pb.readUInt32LE(144), pb.toString('utf8', 152, 153)]).toEqual([
      9n,
      1,
      'x',
    ]);
  });

  it('stops adding when an entry does not fit', () => {
    const w = new DirentWriter(40, false);
    expect(w.add('a', 1, stat)).toBe(true);
    expect(w.add('b', 2, stat)).toBe(false);
    expect(w.bytes.length).toBe(32);
  });

  it('FUSE_NOTIFY_RESEND: a bare 16-byte header, error 7, unique 0', () => {
    const n = encodeNotifyResend();
    expect([n.length, n.readUInt32LE(0), n.readInt32LE(4), n.readBigUInt64LE(8)]).toEqual([16, 16, 7, 0n]);
  });
});

describe('FUSE protocol decoders', () => {
  it('round-trips the request header and finds the body before extensions', () => {
    const h = { opcode: 15, unique: 2n ** 63n + 1n, nodeid: 12345, uid: 1, gid: 2, pid: 3, totalExtlen: 1 };
    const frame = Buffer.concat([encodeInHeader(h, 48), Buffer.alloc(40, 1), Buffer.alloc(8, 2)]);
    const d = decodeInHeader(frame)!;
    expect(d).toEqual({ ...h, len: 88 });
    expect(requestBody(frame, d)?.length).toBe(40);
    expect(decodeInHeader(frame.subarray(0, 39))).toBeUndefined();
    expect(requestBody(frame.subarray(0, 87), d)).toBeUndefined(); // truncated
  });

  it('decodes INIT (old and extended), READ, OPEN, GETXATTR, LISTXATTR, ACCESS, RELEASE bodies', () => {
    const init = Buffer.alloc(64);
    [7, 38, 131072, InitFlag.ASYNC_READ | InitFlag.INIT_EXT, 5].forEach((v, i) =>
      init.writeUInt32LE(v >>> 0, i * 4),
    );
    expect(decodeInitIn(init)).toEqual({
      major: 7,
      minor: 38,
      maxReadahead: 131072,
      flags: 1 | (1 << 30),
      flags2: 5,
    });
    expect(decodeInitIn(init.subarray(0, 16))?.flags2).toBe(0);
    expect(decodeInitIn(init.subarray(0, 4))).toBeUndefined();

    const read = Buffer.alloc(40);
    read.writeBigUInt64LE(2n ** 40n + 7n, 0);
    read.writeBigUInt64LE(1n << 33n, 8);
    read.writeUInt32LE(1 << 20, 16);
    read.writeUInt32LE(2, 20);
    read.writeUInt32LE(0o100000, 32);
    expect(decodeReadIn(read)).toEqual({
      fh: 2 ** 40 + 7,
      offset: 2 ** 33,
      size: 1 << 20,
      readFlags: 2,
      flags: 0o100000,
    });
    expect(decodeReadIn(read.subarray(0, 23))).toBeUndefined();

    const open = Buffer.alloc(8);
    open.writeUInt32LE(0o100002, 0);
    expect(decodeOpenIn(open)).toEqual({ flags: 0o100002, openFlags: 0 });
    const gx = Buffer.concat([Buffer.alloc(8), Buffer.from('user.x\0')]);
    gx.writeUInt32LE(64, 0);
    expect(decodeGetxattrIn(gx)).toEqual({ size: 64, name: 'user.x' });
    expect(decodeGetxattrIn(gx.subarray(0, 10))).toBeUndefined(); // no NUL
    expect(decodeListxattrIn(gx)).toEqual({ size: 64 });
    expect(decodeAccessIn(Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]))).toEqual({ mask: 2 });
    const rel = Buffer.alloc(24);
    rel.writeBigUInt64LE(99n, 0);
    rel.writeUInt32LE(0o100000, 8);
    rel.writeUInt32LE(1, 12);
    expect(decodeReleaseIn(rel)).toEqual({ fh: 99, flags: 0o100000, releaseFlags: 1 });
    expect(decodeName(Buffer.from('name\0junk'))).toBe('name');
    expect(decodeName(Buffer.from('\0'))).toBeUndefined();
  });
});

describe('raw server robustness', () => {
  const { index, blob } = buildIdentityLayer(
    [
      { path: 'f', content: Buffer.alloc(200_000, 7) },
      { path: 'd/x', content: 'x' },
      { path: 'l', type: 'symlink', linkTarget: 'f' },
      { path: 'wh', type: 'whiteout' },
      { path: 'o', type: 'dir', opaque: true, xattrs: { 'user.a': 'b' } },
    ],
    { chunkSizeBytes: 64 * 1024 },
  );
  const tree = LayerTree.fromIndex(index);
  const reader = identityReader(index, blob);
  const server = createRawLayerServer({
    tree,
    reader,
    log: silentLogger(),
    timings: fuseTimings({ attrTimeoutMs: 1000, entryTimeoutMs: 1000, negativeTimeoutMs: 1000 }),
  });
  const handleFlat = async (req: Buffer): Promise<Buffer | undefined> => {
    const r = await server.handle(req);
    return r === undefined ? undefined : replyBytes(r);
  };
  const opcodes = [...Object.values(Opcode), 0, 4, 16, 39, 4096, 0xffffffff];

  /** A frame with a plausible header (random opcode among ours, small node id) and a random body. */
  const framed = fc
    .record({
      opcode: fc.constantFrom(...opcodes),
      nodeid: fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(2 ** 53 + 10)),
      unique: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      body: fc.uint8Array({ maxLength: 96 }),
      extlen: fc.integer({ min: 0, max: 3 }),
      lenDelta: fc.constantFrom(0, 0, 0, -1, 1, -50),
    })
    .map((r) => {
      const head = encodeInHeader(
        {
          opcode: r.opcode,
          nodeid: r.nodeid,
          unique: r.unique,
          uid: 0,
          gid: 0,
          pid: 1,
          totalExtlen: r.extlen,
        },
        r.body.length,
      );
      head.writeUInt32LE(Math.max(0, IN_HEADER_BYTES + r.body.length + r.lenDelta), 0);
      return Buffer.concat([head, Buffer.from(r.body)]);
    });

  it('never throws or rejects on arbitrary or truncated bytes; every reply is a well-formed frame', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
          framed,
        ),
        async (req) => {
          const reply = await handleFlat(req); // a throw or a rejection fails the property
          if (reply === undefined) return;
          expect(reply.length).toBeGreaterThanOrEqual(16);
          expect(reply.readUInt32LE(0)).toBe(reply.length);
          const err = reply.readInt32LE(4);
          expect(err <= 0 && err > -512).toBe(true);
          if (req.length >= 16) expect(reply.readBigUInt64LE(8)).toBe(req.readBigUInt64LE(8));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('answers short frames EINVAL and unknown opcodes ENOSYS', async () => {
    const short = Buffer.alloc(20);
    short.writeBigUInt64LE(5n, 8);
    expect((await handleFlat(short))?.readInt32LE(4)).toBe(EINVAL);
    expect(await handleFlat(Buffer.alloc(10))).toBeUndefined();
    const unknown = encodeInHeader(
      { opcode: 4, nodeid: 1, unique: 9n, uid: 0, gid: 0, pid: 0, totalExtlen: 0 },
      0,
    );
    expect((await handleFlat(unknown))?.readInt32LE(4)).toBe(ENOSYS);
  });
});
