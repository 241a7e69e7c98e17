// Differential test of layer materialisation: a layer with every entry kind written out as a plain directory
// equals the same layer served through a real FUSE mount (types, modes, owners, sizes, contents, xattrs,
// hardlinks, devices, whiteouts), and merges under overlayfs exactly as the FUSE mount does.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { materialiseLayer } from '../../src/layer/materialise.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { composeSource } from '../../src/source/compose.js';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { silentLogger } from '../../src/log.js';
import { buildIdentityLayer, identityFetch } from '../helpers/identity-layer.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { treeManifest } from '../helpers/ferry-cli.js';
import {
  mountTestLayer,
  must,
  requireRootAndFuse,
  run,
  safeUnmount,
  tempDir,
  type TestMount,
} from '../fuse/fuse-harness.js';

requireRootAndFuse();

const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const upper = buildIdentityLayer(
  [
    { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n', mode: 0o644 },
    { path: 'bin/suid', content: '#!/bin/sh\n', mode: 0o4755 },
    { path: 'bin/sgid', content: '#!/bin/sh\n', mode: 0o2711, gid: 42 },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
    { path: 'home/user', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
    { path: 'home/user/secret', content: 'shh', mode: 0o600, uid: 1000, gid: 100 },
    { path: 'big', content: randomBytes(3 * 1024 * 1024 + 77) },
    { path: 'empty', content: '' },
    { path: 'name with spaces=and\\odd', content: 'odd\n' },
    { path: 'link', type: 'symlink', linkTarget: 'etc/passwd', mode: 0o777 },
    { path: 'dangling', type: 'symlink', linkTarget: '/nowhere/at/all', mode: 0o777 },
    { path: 'hard', type: 'hardlink', linkTarget: 'etc/passwd' },
    { path: 'bin/hard-suid', type: 'hardlink', linkTarget: 'bin/suid' },
    { path: 'dev/null', type: 'char', devMajor: 1, devMinor: 3, mode: 0o666 },
    { path: 'dev/sda', type: 'block', devMajor: 8, devMinor: 0, mode: 0o660 },
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

describe('a materialised layer', () => {
  const dir = tempDir('ferry-mat-');
  const fuseUpper = join(dir.path, 'fuse-upper');
  const fuseLower = join(dir.path, 'fuse-lower');
  const mat = join(dir.path, 'mat');
  const merged = join(dir.path, 'merged');
  const mergedMat = join(dir.path, 'merged-mat');
  let a: TestMount | undefined;
  let b: TestMount | undefined;
  const overlays: string[] = [];

  beforeAll(async () => {
    mkdirSync(merged);
    mkdirSync(mergedMat);
    a = await mountTestLayer(upper.index, new MemoryBlobReader(upper.blob), fuseUpper);
    b = await mountTestLayer(lower.index, new MemoryBlobReader(lower.blob), fuseLower);
    // Its own chunk service: nothing is cached yet, so every byte comes through the verified path.
    const composed = composeSource({
      store: new MemoryChunkStore({ maxBytes: 64 * 1024 * 1024 }),
      origin: { blobFor: () => new MemoryBlobReader(upper.blob), fetch: identityFetch },
      concurrency: 4,
      log: silentLogger(),
    });
    const r = await materialiseLayer({
      tree: LayerTree.fromIndex(upper.index),
      source: composed.source,
      dest: mat,
    });
    expect(r.files).toBeGreaterThan(5);
  });

  afterAll(async () => {
    for (const m of overlays) await run('umount', ['-l', m]);
    await safeUnmount(a, fuseUpper);
    await safeUnmount(b, fuseLower);
    dir.remove();
  });

  it('equals the FUSE mount of the same layer, entry by entry', async () => {
    const viaFuse = await treeManifest(fuseUpper);
    const plain = await treeManifest(mat);
    expect(plain.entries).toEqual(viaFuse.entries);
    expect(plain.hardlinks).toEqual(viaFuse.hardlinks);
    expect(plain.hardlinks).toContain('etc/passwd=hard');
    expect(plain.entries['gone']).toMatchObject({ type: 'char', rdev: 0 });
    expect(plain.entries['bin/suid']?.['mode']).toBe('4755');
    expect(plain.entries['caps']?.['xattrs']).toContain('security.capability=0x0100000200200000');
  });

  it('marks opaque dirs in overlay format and nothing else', async () => {
    const get = (p: string) =>
      run('getfattr', ['-h', '--only-values', '-n', 'trusted.overlay.opaque', join(mat, p)]);
    expect((await get('opq')).stdout).toBe('y');
    expect((await get('keepdir')).code).not.toBe(0);
    expect(await must('find', [mat, '-name', '.wh.*'])).toBe('');
  });

  it('merges under overlayfs exactly as the FUSE mount does', async () => {
    for (const [target, top] of [
      [merged, fuseUpper],
      [mergedMat, mat],
    ] as const) {
      const m = await run('mount', [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${top}:${fuseLower}`,
        target,
      ]);
      expect(m.code, m.stderr).toBe(0);
      overlays.push(target);
    }
    const viaFuse = await treeManifest(merged);
    const plain = await treeManifest(mergedMat);
    expect(plain.entries).toEqual(viaFuse.entries);
    expect(plain.entries['gone']).toBeUndefined();
    expect(plain.entries['opq/old']).toBeUndefined();
    expect(plain.entries['opq/new']).toBeDefined();
    expect(plain.entries['keepdir/orig']).toBeDefined();
  });

  it('leaves nothing behind when the disk is full', async () => {
    const small = join(dir.path, 'small');
    mkdirSync(small);
    await must('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    overlays.unshift(small);
    const composed = composeSource({
      store: new MemoryChunkStore({ maxBytes: 64 * 1024 * 1024 }),
      origin: { blobFor: () => new MemoryBlobReader(upper.blob), fetch: identityFetch },
      concurrency: 4,
      log: silentLogger(),
    });
    const dest = join(small, 'mat');
    await expect(
      materialiseLayer({ tree: LayerTree.fromIndex(upper.index), source: composed.source, dest }),
    ).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    expect(await must('ls', ['-A', small])).toBe('');
  });
});
