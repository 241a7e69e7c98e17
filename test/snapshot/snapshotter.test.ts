// Snapshotter semantics (containerd's snapshotter contract) over real dirs, with a fake RemoteFileSystem:
// chains, kinds, mounts, field masks, List filters, usage, cleanup, and the remote path with its fallback.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isFerryError, UnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { MetadataStore } from '../../src/snapshot/metadata-store.js';
import type { RemoteFileSystem } from '../../src/snapshot/remote-fs.js';
import type { RemoteLayerRef } from '../../src/snapshot/remote-labels.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';

const LAYER = `sha256:${'1'.repeat(64)}`;

class FakeRemote implements RemoteFileSystem {
  readonly mounted = new Map<string, RemoteLayerRef>();
  mountCalls = 0;
  fail = false;
  delayMs = 0;
  async mount(mountpoint: string, layer: RemoteLayerRef): Promise<{ sizeBytes: number; inodes: number }> {
    this.mountCalls++;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.fail) throw new UnavailableError(`registry down for ${layer.layerDigest}`);
    this.mounted.set(mountpoint, layer);
    return { sizeBytes: 1234, inodes: 7 };
  }
  async check(mountpoint: string): Promise<void> {
    if (!this.mounted.has(mountpoint)) throw new UnavailableError('gone');
    return Promise.resolve();
  }
  async unmount(mountpoint: string): Promise<void> {
    this.mounted.delete(mountpoint);
    return Promise.resolve();
  }
}

function setup(opts: { remote?: FakeRemote; root?: string } = {}) {
  const root = opts.root ?? mkdtempSync(join(tmpdir(), 'ferry-sn-'));
  mkdirSync(root, { recursive: true });
  const store = new MetadataStore({ path: join(root, 'metadata.db') });
  let t = 1_000;
  const sn = new Snapshotter({
    root,
    store,
    log: silentLogger(),
    remoteTimeoutMs: 2_000,
    ...(opts.remote ? { remote: opts.remote } : {}),
    now: () => (t += 1000),
  });
  return { root, store, sn };
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (e) {
    return isFerryError(e) ? e.code : `non-ferry: ${String(e)}`;
  }
}

/** Prepare + write a file + Commit, like an unpack. */
async function layer(sn: Snapshotter, name: string, parent: string, file: string): Promise<void> {
  const key = `extract-${name}`;
  const [m] = await sn.prepare({ key, parent, labels: {} });
  const upper = m!.type === 'bind' ? m!.source : m!.options.find((o) => o.startsWith('upperdir='))!.slice(9);
  writeFileSync(join(upper, file), `contents of ${file}`);
  await sn.commit({ name, key, labels: { 'containerd.io/snapshot.ref': name } });
}

describe('Snapshotter (ordinary snapshots)', () => {
  it('returns overlay-snapshotter mounts: bind, overlay with top-first lowerdir, bind for a one-parent view', async () => {
    const { sn } = setup();
    const [m0] = await sn.prepare({ key: 'k0', parent: '', labels: {} });
    expect(m0).toEqual({
      type: 'bind',
      source: expect.stringMatching(/\/snapshots\/1\/fs$/) as string,
      options: ['rw', 'rbind'],
    });
    await sn.commit({ name: 'c0', key: 'k0', labels: {} });
    await layer(sn, 'c1', 'c0', 'b');
    const [m2] = await sn.prepare({ key: 'container', parent: 'c1', labels: {} });
    expect(m2!.type).toBe('overlay');
    const lower = m2!.options.find((o) => o.startsWith('lowerdir='))!;
    expect(lower).toMatch(/lowerdir=.*\/snapshots\/2\/fs:.*\/snapshots\/1\/fs$/);
    expect(m2!.options.some((o) => o.startsWith('upperdir=') && o.endsWith('/snapshots/3/fs'))).toBe(true);
    expect(m2!.options.some((o) => o.startsWith('workdir=') && o.endsWith('/snapshots/3/work'))).toBe(true);
    const [v1] = await sn.view({ key: 'v1', parent: 'c0', labels: {} });
    expect(v1).toEqual({
      type: 'bind',
      source: expect.stringMatching(/\/snapshots\/1\/fs$/) as string,
      options: ['ro', 'rbind'],
    });
    const [v2] = await sn.view({ key: 'v2', parent: 'c1', labels: {} });
    expect(v2!.type).toBe('overlay');
    expect(v2!.options.some((o) => o.startsWith('upperdir='))).toBe(false);
    const [v0] = await sn.view({ key: 'v0', parent: '', labels: {} });
    expect(v0!.options).toEqual(['ro', 'rbind']);
    expect(await sn.mounts('container')).toEqual([m2]);
  });

  it('enforces kinds and parents with containerd error codes', async () => {
    const { sn } = setup();
    await layer(sn, 'c0', '', 'a');
    await sn.prepare({ key: 'active', parent: 'c0', labels: {} });
    await sn.view({ key: 'view', parent: 'c0', labels: {} });
    expect(await codeOf(sn.prepare({ key: 'active', parent: '', labels: {} }))).toBe('ALREADY_EXISTS');
    expect(await codeOf(sn.prepare({ key: 'x', parent: 'nope', labels: {} }))).toBe('NOT_FOUND');
    expect(await codeOf(sn.prepare({ key: 'x', parent: 'active', labels: {} }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(sn.prepare({ key: '', parent: '', labels: {} }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(sn.mounts('c0'))).toBe('FAILED_PRECONDITION');
    expect(await codeOf(sn.mounts('nope'))).toBe('NOT_FOUND');
    expect(await codeOf(sn.commit({ name: 'x', key: 'view', labels: {} }))).toBe('FAILED_PRECONDITION');
    expect(await codeOf(sn.commit({ name: 'c0', key: 'active', labels: {} }))).toBe('ALREADY_EXISTS');
    expect(await codeOf(sn.commit({ name: 'x', key: 'nope', labels: {} }))).toBe('NOT_FOUND');
    expect(await codeOf(sn.remove('c0'))).toBe('FAILED_PRECONDITION');
    expect(await codeOf(sn.remove('nope'))).toBe('NOT_FOUND');
    expect(await codeOf(() => sn.stat('nope'))).toBe('NOT_FOUND');
    expect(sn.stat('view')).toMatchObject({ kind: 'view', parent: 'c0' });
    expect(sn.stat('c0')).toMatchObject({ kind: 'committed', parent: '' });
  });

  it('rejects labels over 4096 bytes and drops empty values', async () => {
    const { sn } = setup();
    const big = { k: 'v'.repeat(4096) };
    expect(await codeOf(sn.prepare({ key: 'a', parent: '', labels: big }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(sn.prepare({ key: 'a', parent: '', labels: { k: 'v'.repeat(4095) } }))).toBe('ok');
    await sn.prepare({ key: 'b', parent: '', labels: { keep: '1', drop: '' } });
    expect(sn.stat('b').labels).toEqual({ keep: '1' });
  });

  it('Update: labels.<key> sets or deletes one label, labels or an empty mask replaces all, others fail', async () => {
    const { sn } = setup();
    await sn.prepare({ key: 'a', parent: '', labels: { x: '1', y: '2' } });
    const before = sn.stat('a');
    let i = sn.update({ name: 'a', labels: { x: '10', z: '3' } }, ['labels.x']);
    expect(i.labels).toEqual({ x: '10', y: '2' });
    expect(i.updatedAtMs).toBeGreaterThan(before.updatedAtMs);
    i = sn.update({ name: 'a', labels: {} }, ['labels.y']);
    expect(i.labels).toEqual({ x: '10' });
    i = sn.update({ name: 'a', labels: { q: '1' } }, ['labels']);
    expect(i.labels).toEqual({ q: '1' });
    i = sn.update({ name: 'a', labels: { r: '2' } }, []);
    expect(i.labels).toEqual({ r: '2' });
    expect(await codeOf(() => sn.update({ name: 'a', labels: {} }, ['parent']))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => sn.update({ name: 'a', labels: { k: 'v'.repeat(5000) } }, []))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await codeOf(() => sn.update({ name: 'nope', labels: {} }, []))).toBe('NOT_FOUND');
  });

  it('List filters by kind, parent and labels', async () => {
    const { sn } = setup();
    await layer(sn, 'c0', '', 'a');
    await layer(sn, 'c1', 'c0', 'b');
    await sn.prepare({ key: 'active', parent: 'c1', labels: {} });
    expect(sn.list([]).map((i) => i.name)).toEqual(['c0', 'c1', 'active']);
    expect(sn.list(['kind==committed,parent==c0']).map((i) => i.name)).toEqual(['c1']);
    expect(sn.list(['labels."containerd.io/snapshot.ref"==c0,parent==""']).map((i) => i.name)).toEqual([
      'c0',
    ]);
    expect(await codeOf(() => sn.list(['kind=']))).toBe('INVALID_ARGUMENT');
  });

  it('Usage walks an active snapshot and stores it at commit; Remove deletes the dir; Cleanup removes orphans', async () => {
    const { sn, root } = setup();
    const [m] = await sn.prepare({ key: 'a', parent: '', labels: {} });
    writeFileSync(join(m!.source, 'f'), Buffer.alloc(100_000, 1));
    const active = await sn.usage('a');
    expect(active.inodes).toBe(2);
    expect(active.sizeBytes).toBeGreaterThanOrEqual(100_000);
    await sn.commit({ name: 'c', key: 'a', labels: {} });
    expect(await sn.usage('c')).toEqual(active);
    expect(await codeOf(sn.usage('nope'))).toBe('NOT_FOUND');
    const dir = join(root, 'snapshots', '1');
    await sn.remove('c');
    expect(existsSync(dir)).toBe(false);
    mkdirSync(join(root, 'snapshots', '99', 'fs'), { recursive: true });
    await sn.prepare({ key: 'b', parent: '', labels: {} });
    expect(await sn.cleanup()).toEqual([join(root, 'snapshots', '99')]);
    expect(existsSync(join(root, 'snapshots', '2'))).toBe(true);
  });
});

describe('Snapshotter (remote snapshots)', () => {
  const target = 'sha256:chain0';
  const criLabels = {
    'containerd.io/snapshot.ref': target,
    'containerd.io/snapshot/cri.image-ref': '127.0.0.1:5000/app:1',
    'containerd.io/snapshot/cri.layer-digest': LAYER,
    'containerd.io/snapshot/cri.manifest-digest': `sha256:${'2'.repeat(64)}`,
    'containerd.io/snapshot/cri.image-layers': LAYER,
  };

  it('mounts, commits under the target with the ref label and answers ALREADY_EXISTS', async () => {
    const remote = new FakeRemote();
    const { sn } = setup({ remote });
    expect(
      await codeOf(sn.prepare({ key: 'default/1/extract-1 sha256:chain0', parent: '', labels: criLabels })),
    ).toBe('ALREADY_EXISTS');
    const info = sn.stat(target);
    expect(info).toMatchObject({ kind: 'committed', parent: '' });
    expect(info.labels['containerd.io/snapshot.ref']).toBe(target);
    expect(info.labels['containerd.io/snapshot/remote']).toBe('remote snapshot');
    expect([...remote.mounted.values()][0]).toMatchObject({
      imageRef: '127.0.0.1:5000/app:1',
      layerDigest: LAYER,
    });
    expect(await sn.usage(target)).toEqual({ sizeBytes: 1234, inodes: 7 });
    // containerd's follow-up query finds it.
    expect(sn.list([`labels."containerd.io/snapshot.ref"==${target},parent==""`]).map((i) => i.name)).toEqual(
      [target],
    );
    // A second namespace pulling the same layer: answered at once, nothing mounted again.
    expect(
      await codeOf(sn.prepare({ key: 'k8s.io/9/extract-2 sha256:chain0', parent: '', labels: criLabels })),
    ).toBe('ALREADY_EXISTS');
    expect(remote.mountCalls).toBe(1);
    // A container on top: overlay whose lowerdir is the FUSE dir.
    const [m] = await sn.prepare({ key: 'default/3/ctr', parent: target, labels: {} });
    expect(m!.options.find((o) => o.startsWith('lowerdir='))).toBe(
      `lowerdir=${[...remote.mounted.keys()][0]}`,
    );
  });

  it('accepts the labels ctr-remote rpull sends', async () => {
    const remote = new FakeRemote();
    const { sn } = setup({ remote });
    const labels = {
      'containerd.io/snapshot.ref': target,
      'containerd.io/snapshot/remote/stargz.reference': '127.0.0.1:5000/app:1',
      'containerd.io/snapshot/remote/stargz.digest': LAYER,
      'containerd.io/snapshot/remote/stargz.layers': LAYER,
    };
    expect(await codeOf(sn.prepare({ key: 'k', parent: '', labels }))).toBe('ALREADY_EXISTS');
  });

  it('falls back to an ordinary active snapshot when the mount fails or labels are incomplete', async () => {
    const remote = new FakeRemote();
    remote.fail = true;
    const { sn } = setup({ remote });
    const mounts = await sn.prepare({ key: 'k', parent: '', labels: criLabels });
    expect(mounts[0]).toMatchObject({ type: 'bind', options: ['rw', 'rbind'] });
    expect(sn.stat('k').kind).toBe('active');
    expect(await codeOf(() => sn.stat(target))).toBe('NOT_FOUND');
    remote.fail = false;
    const plain = await sn.prepare({
      key: 'k2',
      parent: '',
      labels: { 'containerd.io/snapshot.ref': 'sha256:x' },
    });
    expect(plain[0]!.type).toBe('bind');
    expect(remote.mountCalls).toBe(1);
  });

  it('falls back when the mount takes longer than remoteTimeoutMs', async () => {
    const remote = new FakeRemote();
    remote.delayMs = 3_000;
    const { sn } = setup({ remote });
    const mounts = await sn.prepare({ key: 'slow', parent: '', labels: criLabels });
    expect(mounts[0]!.type).toBe('bind');
    expect(sn.stat('slow').kind).toBe('active');
  });

  it('concurrent Prepares of one target mount once; both answer ALREADY_EXISTS', async () => {
    const remote = new FakeRemote();
    remote.delayMs = 50;
    const { sn } = setup({ remote });
    const codes = await Promise.all([
      codeOf(sn.prepare({ key: 'a', parent: '', labels: criLabels })),
      codeOf(sn.prepare({ key: 'b', parent: '', labels: criLabels })),
    ]);
    expect(codes).toEqual(['ALREADY_EXISTS', 'ALREADY_EXISTS']);
    expect(remote.mountCalls).toBe(1);
  });

  it('restore re-mounts remote snapshots from stored labels; Mounts re-mounts a broken one or says UNAVAILABLE', async () => {
    const remote = new FakeRemote();
    const first = setup({ remote });
    await codeOf(first.sn.prepare({ key: 'k', parent: '', labels: criLabels }));
    await first.sn.prepare({ key: 'ctr', parent: target, labels: {} });
    await first.sn.close();
    expect(remote.mounted.size).toBe(0);
    first.store.close();

    const remote2 = new FakeRemote();
    const second = setup({ remote: remote2, root: first.root });
    expect(await second.sn.restore()).toEqual({ restored: 1, failed: 0 });
    expect([...remote2.mounted.values()][0]?.layerDigest).toBe(LAYER);
    remote2.mounted.clear(); // the FUSE server "died"
    await second.sn.mounts('ctr');
    expect(remote2.mounted.size).toBe(1);
    remote2.mounted.clear();
    remote2.fail = true;
    expect(await codeOf(second.sn.mounts('ctr'))).toBe('UNAVAILABLE');
    // Remove unmounts the layer and deletes its dir.
    remote2.fail = false;
    await second.sn.mounts('ctr');
    await second.sn.remove('ctr');
    await second.sn.remove(target);
    expect(remote2.mounted.size).toBe(0);
  });
});
