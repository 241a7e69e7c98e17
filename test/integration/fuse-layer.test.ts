// Real FUSE mounts of synthetic identity-codec layers, inspected with real tools in child processes, plus an
// overlayfs merge of two mounts (whiteouts, opaque dirs), a read deadline and an integrity failure.
import { randomBytes, createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIdentityLayer } from '../helpers/identity-layer.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import {
  mountTestLayer,
  must,
  requireRootAndFuse,
  run,
  safeUnmount,
  tempDir,
  type TestMount,
} from '../fuse/fuse-harness.js';
import type { BlobReader } from '../../src/image/blob-reader.js';
import type { Digest } from '../../src/image/digest.js';
import { fuseTimings } from '../helpers/fuse-timings.js';

requireRootAndFuse();

const big = randomBytes(1024 * 1024 + 123);
const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const upper = buildIdentityLayer(
  [
    { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n', mode: 0o644 },
    { path: 'bin/suid', content: '#!/bin/sh\n', mode: 0o4755 },
    { path: 'bin/sgid', content: '#!/bin/sh\n', mode: 0o2711, gid: 42 },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
    { path: 'home/user', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
    { path: 'home/user/secret', content: 'shh', mode: 0o600, uid: 1000, gid: 100 },
    { path: 'big', content: big },
    { path: 'link', type: 'symlink', linkTarget: 'etc/passwd', mode: 0o777 },
    { path: 'hard', type: 'hardlink', linkTarget: 'etc/passwd' },
    { path: 'dev/null', type: 'char', devMajor: 1, devMinor: 3, mode: 0o666 },
    { path: 'dev/sda', type: 'block', devMajor: 8, devMinor: 0, mode: 0o660 },
    { path: 'dev/tty300', type: 'char', devMajor: 4, devMinor: 300, mode: 0o620 },
    { path: 'fifo', type: 'fifo', mode: 0o600 },
    {
      path: 'caps',
      content: 'bin',
      mode: 0o755,
      xattrs: { 'security.capability': cap, 'user.note': 'hello' },
    },
    { path: 'gone', type: 'whiteout' },
    { path: 'opq', type: 'dir', opaque: true },
    { path: 'opq/new', content: 'new\n' },
    { path: 'keepdir/added', content: 'added\n' },
  ],
  { chunkSizeBytes: 64 * 1024 },
);
const lower = buildIdentityLayer([
  { path: 'gone', content: 'should be hidden\n' },
  { path: 'opq/old', content: 'old\n' },
  { path: 'keep', content: 'kept\n' },
  { path: 'keepdir/orig', content: 'orig\n' },
]);

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

describe('FUSE layer mount', () => {
  const dir = tempDir('ferry-fuse-');
  const mntA = join(dir.path, 'a');
  const mntB = join(dir.path, 'b');
  const merged = join(dir.path, 'merged');
  let a: TestMount | undefined;
  let b: TestMount | undefined;
  let overlayMounted = false;

  beforeAll(async () => {
    mkdirSync(merged);
    a = await mountTestLayer(upper.index, new MemoryBlobReader(upper.blob), mntA);
    b = await mountTestLayer(lower.index, new MemoryBlobReader(lower.blob), mntB);
  });

  afterAll(async () => {
    if (overlayMounted) await run('umount', ['-l', merged]);
    await safeUnmount(a, mntA);
    await safeUnmount(b, mntB);
    dir.remove();
  });

  const st = async (p: string): Promise<string[]> =>
    (await must('stat', ['-c', '%f %a %u %g %s %h %i %t %T %F', join(mntA, p)])).trim().split(' ');

  it('shows modes incl. setuid/setgid/sticky, owners and sizes', async () => {
    expect(await st('etc/passwd')).toEqual(expect.arrayContaining(['81a4', '644', '0', '0', '30']));
    expect((await st('bin/suid')).slice(0, 2)).toEqual(['89ed', '4755']);
    expect((await st('bin/sgid')).slice(0, 4)).toEqual(['85c9', '2711', '0', '42']);
    expect((await st('tmp')).slice(0, 2)).toEqual(['43ff', '1777']);
    expect((await st('home/user')).slice(0, 4)).toEqual(['41e8', '750', '1000', '1000']);
    expect((await st('home/user/secret')).slice(0, 5)).toEqual(['8180', '600', '1000', '100', '3']);
    expect((await st('big'))[4]).toBe(String(big.length));
  });

  it('lists names with . and ..', async () => {
    const out = await must('ls', ['-la', mntA]);
    const names = out
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/).at(-1));
    expect(names).toEqual(expect.arrayContaining(['.', '..', 'etc', 'big', 'fifo', 'gone', 'opq']));
    expect(out).not.toContain('.wh.');
    expect(out).toMatch(/^l.* link -> etc\/passwd$/m);
  });

  it('reads file contents exactly, across chunk boundaries', async () => {
    expect(await must('cat', [join(mntA, 'etc/passwd')])).toBe('root:x:0:0:root:/root:/bin/sh\n');
    expect((await must('sha256sum', [join(mntA, 'big')])).split(' ')[0]).toBe(sha(big));
    // An unaligned read straddling the 64 KiB chunks.
    const part = await must('dd', [
      `if=${join(mntA, 'big')}`,
      'bs=1',
      'skip=65500',
      'count=100',
      'status=none',
    ]);
    expect(Buffer.from(part, 'latin1').length).toBeGreaterThan(0);
    const r = await must('python3', [
      '-c',
      `import sys;f=open(sys.argv[1],'rb');f.seek(65500);sys.stdout.write(f.read(70000).hex())`,
      join(mntA, 'big'),
    ]);
    expect(r).toBe(big.subarray(65500, 135500).toString('hex'));
  });

  it('serves symlinks and hardlinks (same inode, nlink 2)', async () => {
    expect((await must('readlink', [join(mntA, 'link')])).trim()).toBe('etc/passwd');
    expect((await st('link'))[4]).toBe('10');
    const p = await st('etc/passwd');
    const h = await st('hard');
    expect(h[6]).toBe(p[6]);
    expect(h[5]).toBe('2');
    expect(p[5]).toBe('2');
    expect(await must('cat', [join(mntA, 'hard')])).toBe('root:x:0:0:root:/root:/bin/sh\n');
  });

  it('serves devices with major/minor, fifos, and whiteouts as char 0/0', async () => {
    expect(await st('dev/null')).toEqual(expect.arrayContaining(['21b6', '666', '1', '3', 'character']));
    const sda = await st('dev/sda');
    expect([sda[0], sda[7], sda[8]]).toEqual(['61b0', '8', '0']);
    const tty = await st('dev/tty300');
    expect([tty[7], tty[8]]).toEqual(['4', '12c']);
    expect((await st('fifo'))[0]).toBe('1180');
    const wh = await st('gone');
    expect([wh[0], wh[1], wh[7], wh[8]]).toEqual(['2000', '0', '0', '0']);
  });

  it('serves xattrs; unknown ones are ENODATA; opaque dirs carry overlay.opaque', async () => {
    const xattr = (p: string, name: string): Promise<string> =>
      must('python3', [
        '-c',
        'import os,sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2]).hex())\nexcept OSError as e: print("errno", e.errno)',
        join(mntA, p),
        name,
      ]);
    expect((await xattr('caps', 'security.capability')).trim()).toBe(cap.toString('hex'));
    expect((await xattr('caps', 'user.note')).trim()).toBe(Buffer.from('hello').toString('hex'));
    expect((await xattr('caps', 'user.nope')).trim()).toBe('errno 61');
    expect((await xattr('opq', 'trusted.overlay.opaque')).trim()).toBe('79');
    expect((await xattr('opq', 'user.overlay.opaque')).trim()).toBe('79');
    expect((await xattr('etc', 'trusted.overlay.opaque')).trim()).toBe('errno 61');
    const list = await must('python3', [
      '-c',
      'import os,sys; print(sorted(os.listxattr(sys.argv[1])))',
      join(mntA, 'caps'),
    ]);
    expect(list.trim()).toBe("['security.capability', 'user.note']");
  });

  it('refuses a second mount at the same place without disturbing the first', async () => {
    await expect(mountTestLayer(lower.index, new MemoryBlobReader(lower.blob), mntA)).rejects.toThrow(
      /cannot mount/,
    );
    expect(await must('cat', [join(mntA, 'etc/passwd')])).toBe('root:x:0:0:root:/root:/bin/sh\n');
  });

  it('is read-only', async () => {
    const w = await run('sh', ['-c', `echo x >> ${join(mntA, 'etc/passwd')}`]);
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/Read-only file system/);
    const mk = await run('mkdir', [join(mntA, 'newdir')]);
    expect(mk.stderr).toMatch(/Read-only file system/);
    const mountLine = (await must('cat', ['/proc/self/mounts'])).split('\n').find((l) => l.includes(mntA));
    expect(mountLine).toMatch(/^ferry \S+ fuse\.ferry ro,/);
    expect(mountLine).not.toMatch(/nosuid|nodev/);
  });

  it('merges under overlayfs: whiteouts and opaque dirs hide lower entries', async () => {
    const m = await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${mntA}:${mntB}`, merged]);
    expect(m.stderr).toBe('');
    expect(m.code).toBe(0);
    overlayMounted = true;
    const top = (await must('ls', ['-a', merged])).split('\n');
    expect(top).toContain('keep');
    expect(top).not.toContain('gone');
    expect(top.some((n) => n.startsWith('.wh.'))).toBe(false);
    expect((await must('ls', ['-a', join(merged, 'opq')])).split('\n').filter(Boolean).sort()).toEqual([
      '.',
      '..',
      'new',
    ]);
    expect((await must('ls', [join(merged, 'keepdir')])).split('\n').filter(Boolean).sort()).toEqual([
      'added',
      'orig',
    ]);
    expect((await run('stat', [join(merged, 'gone')])).code).not.toBe(0);
    expect(await must('cat', [join(merged, 'keep')])).toBe('kept\n');
    expect((await must('sha256sum', [join(merged, 'big')])).split(' ')[0]).toBe(sha(big));
    expect((await must('stat', ['-c', '%a', join(merged, 'bin/suid')])).trim()).toBe('4755');
  });
});

/** Answers ranges below `hangFrom` at once and never answers the rest (until aborted). */
class HangingBlob implements BlobReader {
  readonly digest = 'sha256:0000000000000000000000000000000000000000000000000000000000000000' as Digest;
  constructor(
    private readonly inner: MemoryBlobReader,
    private readonly hangFrom: number,
  ) {}
  size(): Promise<number> {
    return this.inner.size();
  }
  /** A registry that stalls once its body reaches `hangFrom`: any read covering that byte never ends. */
  readRange(start: number, end: number, signal?: AbortSignal): Promise<Buffer> {
    if (end <= this.hangFrom) return this.inner.readRange(start, end);
    return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted'))));
  }
  stream(): Promise<AsyncIterable<Buffer>> {
    return this.inner.stream();
  }
}

describe('FUSE reads: sharing and failures', () => {
  const dir = tempDir('ferry-fuse-fail-');
  const mounts: [TestMount | undefined, string][] = [];
  afterAll(async () => {
    for (const [m, p] of mounts) await safeUnmount(m, p);
    dir.remove();
  });

  it('concurrent readers in several processes fetch each chunk from the origin once', async () => {
    const content = randomBytes(3 * 1024 * 1024);
    const layer = buildIdentityLayer([{ path: 'shared', content }], { chunkSizeBytes: 256 * 1024 });
    const mnt = join(dir.path, 'shared');
    const blob = new MemoryBlobReader(layer.blob);
    const m = await mountTestLayer(layer.index, blob, mnt, { kernelCache: false });
    mounts.push([m, mnt]);
    const sums = await Promise.all(Array.from({ length: 4 }, () => must('sha256sum', [join(mnt, 'shared')])));
    for (const s of sums) expect(s.split(' ')[0]).toBe(sha(content));
    const covering = Math.ceil((content.length + 512) / (256 * 1024));
    expect(m.composed.stats().origin.chunks).toBe(covering);
    // Adjacent chunks asked for together may share one Range request; no byte is fetched twice.
    expect(blob.rangeCalls).toBeLessThanOrEqual(covering);
    expect(blob.bytesRead).toBeLessThanOrEqual(layer.blob.length);
  });

  it('fails a read that misses its deadline with EIO and stays usable', async () => {
    const layer = buildIdentityLayer(
      [
        { path: 'fast', content: 'fast bytes\n' },
        { path: 'pad', content: Buffer.alloc(20_000, 1) },
        { path: 'slow', content: randomBytes(10_000) },
      ],
      { chunkSizeBytes: 4096 },
    );
    const slowEntry = layer.index.entries.find((e) => e.path === 'slow')!;
    const mnt = join(dir.path, 'deadline');
    const m = await mountTestLayer(
      layer.index,
      new HangingBlob(new MemoryBlobReader(layer.blob), slowEntry.dataOffset! - 1),
      mnt,
      { timings: fuseTimings({ readDeadlineMs: 800 }) },
    );
    mounts.push([m, mnt]);
    const r = await run('cat', [join(mnt, 'slow')], 30_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Input\/output error/);
    expect(r.ms).toBeLessThan(5_000);
    expect(await must('cat', [join(mnt, 'fast')])).toBe('fast bytes\n');
    expect((await must('stat', ['-c', '%s', join(mnt, 'slow')])).trim()).toBe('10000');
  });

  it('never serves bytes that fail verification: EIO instead', async () => {
    const content = randomBytes(50_000);
    const layer = buildIdentityLayer(
      [
        { path: 'good', content: 'good\n' },
        { path: 'bad', content },
      ],
      {
        chunkSizeBytes: 8192,
      },
    );
    const corrupt = Buffer.from(layer.blob);
    const badAt = layer.index.entries.find((e) => e.path === 'bad')!.dataOffset! + 30_000;
    corrupt[badAt] = corrupt[badAt]! ^ 0xff;
    const mnt = join(dir.path, 'verify');
    const m = await mountTestLayer(layer.index, new MemoryBlobReader(corrupt), mnt);
    mounts.push([m, mnt]);
    const r = await run('cat', [join(mnt, 'bad')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Input\/output error/);
    // Bytes before the corrupt chunk may be delivered; never the corrupt region.
    const partial = await run('dd', [
      `if=${join(mnt, 'bad')}`,
      'bs=4096',
      'skip=7',
      'count=1',
      'status=none',
    ]);
    expect(partial.code).not.toBe(0);
    expect(await must('cat', [join(mnt, 'good')])).toBe('good\n');
    expect(m.composed.verify.rejected).toBeGreaterThan(0);
  });
});
