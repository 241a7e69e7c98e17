// Pure parts of fuse/: errno mapping, rdev encoding, stats, the ops' callback contract, mountinfo parsing.
import { describe, expect, it } from 'vitest';
import type { FuseStat } from 'fuse-native';
import { makeDev } from '../../src/fuse/attrs.js';
import { ErrnoMapper, errnoFor, EIO, ENOENT, ENODATA, EROFS, EISDIR } from '../../src/fuse/errno.js';
import { createLayerOps } from '../../src/fuse/ops.js';
import { parseMountInfo } from '../../src/os/mountinfo.js';
import { IntegrityError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { buildIdentityLayer, identityReader } from '../helpers/identity-layer.js';

describe('errno mapping', () => {
  it('maps codes', () => {
    expect(errnoFor('INTEGRITY')).toBe(-5);
    expect(errnoFor('UNAVAILABLE')).toBe(-5);
    expect(errnoFor('DEADLINE_EXCEEDED')).toBe(-5);
    expect(errnoFor('NOT_FOUND')).toBe(-2);
  });
  it('logs a repeated failure once per window', () => {
    const lines: string[] = [];
    const log = { warn: (_o: unknown, m: string) => lines.push(m) } as unknown as ReturnType<
      typeof silentLogger
    >;
    const m = new ErrnoMapper({ log });
    expect(m.fail(new IntegrityError('chunk 3 of layer sha256:x bad'), 'read', '/f')).toBe(EIO);
    expect(m.fail(new IntegrityError('chunk 3 of layer sha256:x bad'), 'read', '/f')).toBe(EIO);
    expect(m.fail(new Error('boom'), 'read', '/f')).toBe(EIO);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('chunk 3 of layer sha256:x');
  });
});

describe('attrs', () => {
  it('encodes rdev like glibc makedev', () => {
    expect(makeDev(1, 3)).toBe(0x103);
    expect(makeDev(8, 0)).toBe(0x800);
    expect(makeDev(4, 300)).toBe((4 << 8) | (300 & 0xff) | ((300 & ~0xff) << 12));
  });
});

describe('layer ops callbacks', () => {
  const { index, blob } = buildIdentityLayer([
    { path: 'f', content: 'hello world' },
    { path: 'd/x', content: 'x' },
    { path: 'wh', type: 'whiteout' },
    { path: 'o', type: 'dir', opaque: true },
  ]);
  const tree = LayerTree.fromIndex(index);
  const reader = identityReader(index, blob);
  const { ops } = createLayerOps({ tree, reader, log: silentLogger() });
  const call = <T extends unknown[]>(fn: (cb: (...a: T) => void) => void): Promise<T> =>
    new Promise((resolve) => fn((...a) => resolve(a)));

  it('getattr / readdir with stats incl . and ..', async () => {
    const [err, st] = await call<[number, FuseStat?]>((cb) => ops.getattr!('/f', cb));
    expect(err).toBe(0);
    expect(st?.mode).toBe(0o100644);
    expect((await call<[number]>((cb) => ops.getattr!('/nope', cb)))[0]).toBe(ENOENT);
    const [e2, names, stats] = await call<[number, string[]?, FuseStat[]?]>((cb) => ops.readdir!('/', cb));
    expect(e2).toBe(0);
    expect(names).toEqual(['.', '..', 'd', 'f', 'o', 'wh']);
    expect(stats?.map((s) => s.mode)).toEqual([0o40755, 0o40755, 0o40755, 0o100644, 0o40755, 0o20000]);
  });

  it('open refuses writes and dirs; read copies into the buffer or returns -errno', async () => {
    expect((await call<[number]>((cb) => ops.open!('/f', 1, cb)))[0]).toBe(EROFS);
    expect((await call<[number]>((cb) => ops.open!('/f', 0o1000, cb)))[0]).toBe(EROFS);
    expect((await call<[number]>((cb) => ops.open!('/d', 0, cb)))[0]).toBe(EISDIR);
    const [e, fh] = await call<[number, number?]>((cb) => ops.open!('/f', 0, cb));
    expect(e).toBe(0);
    expect(fh).toBeGreaterThan(0);
    const buf = Buffer.alloc(5);
    const [n] = await call<[number]>((cb) => ops.read!('/f', fh!, buf, 5, 6, cb));
    expect(n).toBe(5);
    expect(buf.toString()).toBe('world');
    const [eof] = await call<[number]>((cb) => ops.read!('/f', fh!, Buffer.alloc(5), 5, 100, cb));
    expect(eof).toBe(0);
    const [missing] = await call<[number]>((cb) => ops.read!('/gone', 9999, Buffer.alloc(5), 5, 0, cb));
    expect(missing).toBe(ENOENT);
  });

  it('getxattr answers opaque, null for unknown (ENODATA in fuse-native), never ENOSYS', async () => {
    const [e, v] = await call<[number, (Buffer | null)?]>((cb) =>
      ops.getxattr!('/o', 'trusted.overlay.opaque', 0, cb),
    );
    expect(e).toBe(0);
    expect(v?.toString()).toBe('y');
    const [e2, v2] = await call<[number, (Buffer | null)?]>((cb) => ops.getxattr!('/f', 'user.x', 0, cb));
    expect([e2, v2]).toEqual([0, null]);
    expect(ENODATA).toBe(-61);
  });
});

describe('mountinfo parsing', () => {
  it('parses mountpoints with escapes, fs types and devices', () => {
    const text =
      '36 35 98:0 / /mnt/a\\040b rw,nosuid - fuse ferry rw,user_id=0\n' +
      '37 35 0:5 / /proc rw - proc proc rw\n';
    expect(parseMountInfo(text)).toEqual([
      { mountpoint: '/mnt/a b', fstype: 'fuse', source: 'ferry', device: '98:0' },
      { mountpoint: '/proc', fstype: 'proc', source: 'proc', device: '0:5' },
    ]);
  });
});
