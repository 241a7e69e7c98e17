// Materialised remote layers in the snapshotter (real dirs and metadata, a fake RemoteFileSystem): when a layer
// is materialised, what new mounts use, what a restart keeps, and what Remove cleans up.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FerryError, isFerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { MetadataStore } from '../../src/snapshot/metadata-store.js';
import type { MaterialisePolicy } from '../../src/snapshot/layer-materialiser.js';
import type { RemoteFileSystem } from '../../src/snapshot/remote-fs.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';
import type { SnapshotUsage } from '../../src/snapshot/types.js';

const LAYER = `sha256:${'1'.repeat(64)}`;
const target = 'sha256:chain0';
const labels = {
  'containerd.io/snapshot.ref': target,
  'containerd.io/snapshot/cri.image-ref': '127.0.0.1:5000/app:1',
  'containerd.io/snapshot/cri.layer-digest': LAYER,
  'containerd.io/snapshot/cri.manifest-digest': `sha256:${'2'.repeat(64)}`,
  'containerd.io/snapshot/cri.image-layers': LAYER,
};

class FakeRemote implements RemoteFileSystem {
  readonly mounted = new Set<string>();
  mountCalls = 0;
  readonly materialised: Array<{ mountpoint: string; dest: string; fetchMissing: boolean }> = [];
  /** What materialise answers next ('error' throws a disk-full error). */
  next: 'done' | 'incomplete' | 'error' = 'done';
  proven: Promise<void> | undefined;
  held = false;
  async mount(mountpoint: string): Promise<SnapshotUsage> {
    this.mountCalls++;
    this.mounted.add(mountpoint);
    // As LazyLayerFs: `verified` stays pending while no bad bytes turn up; only `proven` says when to materialise.
    return Promise.resolve({
      sizeBytes: 1,
      inodes: 1,
      verified: new Promise<void>(() => {}),
      proven: this.proven,
    });
  }
  async check(mountpoint: string): Promise<void> {
    if (!this.mounted.has(mountpoint)) throw new Error('gone');
    return Promise.resolve();
  }
  async unmount(mountpoint: string): Promise<void> {
    this.mounted.delete(mountpoint);
    return Promise.resolve();
  }
  async materialise(
    mountpoint: string,
    dest: string,
    o: { fetchMissing: boolean },
  ): Promise<'done' | 'incomplete'> {
    this.materialised.push({ mountpoint, dest, fetchMissing: o.fetchMissing });
    await Promise.resolve();
    if (this.next === 'error') throw new FerryError('RESOURCE_EXHAUSTED', 'disk full');
    if (this.next === 'incomplete') return 'incomplete';
    mkdirSync(dest);
    writeFileSync(join(dest, 'plain'), 'x');
    return 'done';
  }
  holds(): boolean {
    return this.held;
  }
}

function setup(remote: FakeRemote, policy: MaterialisePolicy, root?: string) {
  const dir = root ?? mkdtempSync(join(tmpdir(), 'ferry-mat-sn-'));
  const store = new MetadataStore({ path: join(dir, 'metadata.db') });
  const sn = new Snapshotter({
    root: dir,
    store,
    log: silentLogger(),
    remote,
    remoteTimeoutMs: 2_000,
    materialise: { policy, delayMs: 0 },
  });
  return { root: dir, store, sn };
}

async function pull(sn: Snapshotter): Promise<void> {
  try {
    await sn.prepare({ key: 'default/1/extract-1 sha256:chain0', parent: '', labels });
  } catch (e) {
    if (!isFerryError(e, 'ALREADY_EXISTS')) throw e;
  }
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

const lowerOf = async (sn: Snapshotter, key: string) =>
  (await sn.prepare({ key, parent: target, labels: {} }))[0]!.options.find((o) => o.startsWith('lowerdir='));

describe('materialised remote layers', () => {
  it('background: new mounts get the plain dir once it is written; a restart keeps it without FUSE', async () => {
    const remote = new FakeRemote();
    const { root, store, sn } = setup(remote, 'background');
    await pull(sn);
    const id = store.require(target).id;
    const fsDir = join(root, 'snapshots', String(id), 'fs');
    const matDir = join(root, 'snapshots', String(id), 'mat');
    await until(() => store.require(target).materialised);
    expect(remote.materialised).toEqual([{ mountpoint: fsDir, dest: matDir, fetchMissing: true }]);
    expect(await lowerOf(sn, 'ctr1')).toBe(`lowerdir=${matDir}`);
    await sn.close();
    store.close();

    const remote2 = new FakeRemote();
    const second = setup(remote2, 'background', root);
    expect(await second.sn.restore()).toEqual({ restored: 1, failed: 0 });
    expect(remote2.mountCalls).toBe(0); // nothing held for running containers: no FUSE mount needed
    expect(await lowerOf(second.sn, 'ctr2')).toBe(`lowerdir=${matDir}`);
    await second.sn.remove('ctr1');
    await second.sn.remove('ctr2');
    await second.sn.remove(target);
    expect(existsSync(matDir)).toBe(false);
    await second.sn.close();
    second.store.close();
  });

  it('a restart re-mounts FUSE when running containers still hold it, and forgets a dir that is gone', async () => {
    const remote = new FakeRemote();
    const { root, store, sn } = setup(remote, 'background');
    await pull(sn);
    const id = String(store.require(target).id);
    await until(() => store.require(target).materialised);
    await sn.close();
    store.close();

    const held = new FakeRemote();
    held.held = true;
    const second = setup(held, 'background', root);
    await second.sn.restore();
    expect(held.mountCalls).toBe(1);
    expect(second.store.require(target).materialised).toBe(true);
    await second.sn.close();
    second.store.close();

    rmSync(join(root, 'snapshots', id, 'mat'), { recursive: true });
    const remote3 = new FakeRemote();
    remote3.next = 'incomplete';
    const third = setup(remote3, 'cached', root);
    await third.sn.restore();
    expect(third.store.require(target).materialised).toBe(false);
    expect(remote3.mountCalls).toBe(1);
    expect(await lowerOf(third.sn, 'ctr3')).toBe(`lowerdir=${join(root, 'snapshots', id, 'fs')}`);
    await third.sn.close();
    third.store.close();
  });

  it('cached: waits until every chunk is local, asking again when a new mount uses the layer', async () => {
    const remote = new FakeRemote();
    remote.next = 'incomplete';
    const { store, sn } = setup(remote, 'cached');
    await pull(sn);
    await until(() => remote.materialised.length === 1);
    expect(remote.materialised[0]!.fetchMissing).toBe(false);
    expect(await lowerOf(sn, 'ctr1')).toMatch(/\/fs$/);
    remote.next = 'done';
    await until(() => store.require(target).materialised);
    expect(await lowerOf(sn, 'ctr2')).toMatch(/\/mat$/);
    await sn.close();
    store.close();
  });

  it('never materialises a layer that fails its audit, nor retries after a full disk; off does nothing', async () => {
    const audited = new FakeRemote();
    audited.proven = Promise.reject(new Error('integrity'));
    audited.proven.catch(() => undefined);
    const a = setup(audited, 'background');
    await pull(a.sn);
    await new Promise((r) => setTimeout(r, 50));
    expect(audited.materialised).toEqual([]);

    const full = new FakeRemote();
    full.next = 'error';
    const b = setup(full, 'background');
    await pull(b.sn);
    await until(() => full.materialised.length === 1);
    await b.sn.prepare({ key: 'ctr', parent: target, labels: {} });
    await new Promise((r) => setTimeout(r, 50));
    expect(full.materialised).toHaveLength(1);
    expect(b.store.require(target).materialised).toBe(false);

    const off = new FakeRemote();
    const c = setup(off, 'off');
    await pull(c.sn);
    await new Promise((r) => setTimeout(r, 50));
    expect(off.materialised).toEqual([]);
    for (const s of [a, b, c]) {
      await s.sn.close();
      s.store.close();
    }
  });
});
