// The snapshots gRPC service in process over a unix socket, driven by a grpc-js client as containerd's proxy
// would: status codes and messages, List batching, timestamps, field masks, socket handling and shutdown.
import { status } from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { SnapshotsServer } from '../../src/api/snapshots-server.js';
import { MetadataStore } from '../../src/snapshot/metadata-store.js';
import type { RemoteFileSystem } from '../../src/snapshot/remote-fs.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';
import { snapshotsClient, type SnapshotsClient } from './grpc-client.js';

const remote: RemoteFileSystem & { fail: boolean } = {
  fail: false,
  async mount() {
    if (this.fail) throw new UnavailableError('down');
    return Promise.resolve({ sizeBytes: 5_000_000_000, inodes: 3 });
  },
  check: async () => Promise.resolve(),
  unmount: async () => Promise.resolve(),
};

let root: string;
let server: SnapshotsServer;
let store: MetadataStore;
let c: SnapshotsClient;
const socketPath = () => join(root, 'run', 'sn.sock');

function make(path: string): SnapshotsServer {
  store = new MetadataStore({ path: join(root, 'metadata.db') });
  const snapshotter = new Snapshotter({ root, store, log: silentLogger(), remote, remoteTimeoutMs: 5_000 });
  return new SnapshotsServer({ socketPath: path, snapshotter, log: silentLogger() });
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => ({ code: status.OK, details: '' }),
    (e: unknown) => {
      const err = e as { code: number; details: string };
      return { code: err.code, details: err.details };
    },
  );

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'ferry-api-'));
  mkdirSync(join(root, 'run'));
  // A stale socket from a crashed run (nobody listening) is replaced.
  const stale = createServer();
  await new Promise<void>((r) => stale.listen(socketPath(), r));
  await new Promise<void>((r) => {
    // Close without unlinking, as a killed process would leave it.
    (stale as unknown as { _handle: { close(): void } | null })._handle?.close();
    r();
  });
  server = make(socketPath());
  await server.start();
  c = await snapshotsClient(socketPath());
});

afterAll(async () => {
  c?.close();
  await server?.stop(1000);
  store?.close();
});

describe('snapshots gRPC service', () => {
  it('listens with mode 0660 and refuses to start over a live socket', async () => {
    expect(statSync(socketPath()).mode & 0o777).toBe(0o660);
    const second = new SnapshotsServer({
      socketPath: socketPath(),
      snapshotter: new Snapshotter({ root, store, log: silentLogger(), remoteTimeoutMs: 1 }),
      log: silentLogger(),
    });
    await expect(second.start()).rejects.toThrow(/in use/);
  });

  it('runs a prepare → commit → view chain and returns mounts and Info', async () => {
    const p = await c.call<{ mounts: Array<{ type: string; options: string[] }> }>('Prepare', {
      key: 'default/1/extract a',
      labels: { 'containerd.io/snapshot.ref': 'sha256:a' },
    });
    expect(p.mounts).toEqual([
      { type: 'bind', source: expect.any(String) as string, target: '', options: ['rw', 'rbind'] },
    ]);
    await c.call('Commit', { key: 'default/1/extract a', name: 'default/2/sha256:a', labels: { x: '1' } });
    const st = await c.call<{ info: Record<string, unknown> }>('Stat', { key: 'default/2/sha256:a' });
    expect(st.info).toMatchObject({
      name: 'default/2/sha256:a',
      parent: '',
      kind: 'COMMITTED',
      labels: { x: '1' },
    });
    expect((st.info['created_at'] as { seconds: number }).seconds).toBeGreaterThan(1_600_000_000);
    const v = await c.call<{ mounts: Array<{ type: string; options: string[] }> }>('View', {
      key: 'default/3/view',
      parent: 'default/2/sha256:a',
    });
    expect(v.mounts[0]).toMatchObject({ type: 'bind', options: ['ro', 'rbind'] });
    expect((await c.call<{ info: { kind: string } }>('Stat', { key: 'default/3/view' })).info.kind).toBe(
      'VIEW',
    );
    const u = await c.call<{ size: number; inodes: number }>('Usage', { key: 'default/2/sha256:a' });
    expect(u.inodes).toBe(1);
  });

  it('maps errors to containerd status codes with readable messages', async () => {
    expect(await codeOf(c.call('Stat', { key: 'missing' }))).toEqual({
      code: status.NOT_FOUND,
      details: 'snapshot "missing" does not exist',
    });
    expect((await codeOf(c.call('Prepare', { key: 'x', parent: 'default/3/view' }))).code).toBe(
      status.INVALID_ARGUMENT,
    );
    expect((await codeOf(c.call('Commit', { key: 'default/3/view', name: 'n' }))).code).toBe(
      status.FAILED_PRECONDITION,
    );
    expect((await codeOf(c.call('Mounts', { key: 'default/2/sha256:a' }))).code).toBe(
      status.FAILED_PRECONDITION,
    );
    expect((await codeOf(c.call('Remove', { key: 'default/2/sha256:a' }))).code).toBe(
      status.FAILED_PRECONDITION,
    );
    expect((await codeOf(c.call('Update', {}))).code).toBe(status.INVALID_ARGUMENT);
    const big = await codeOf(c.call('Prepare', { key: 'y', labels: { k: 'v'.repeat(4096) } }));
    expect(big.code).toBe(status.INVALID_ARGUMENT);
    expect(big.details).toMatch(/greater than maximum size \(4096 bytes\)/);
  });

  it('answers a remote Prepare with ALREADY_EXISTS and stores the target committed', async () => {
    const labels = {
      'containerd.io/snapshot.ref': 'sha256:remote',
      'containerd.io/snapshot/cri.image-ref': '127.0.0.1:1/app:1',
      'containerd.io/snapshot/cri.layer-digest': `sha256:${'3'.repeat(64)}`,
    };
    const r = await codeOf(c.call('Prepare', { key: 'default/9/extract r', labels }));
    expect(r).toEqual({
      code: status.ALREADY_EXISTS,
      details: 'target snapshot "sha256:remote": already exists',
    });
    const batches = await c.list(['labels."containerd.io/snapshot.ref"==sha256:remote,parent==""']);
    expect(batches.flat().map((i) => i['name'])).toEqual(['sha256:remote']);
    // Sizes over 2^32 survive the int64 field.
    expect((await c.call<{ size: number }>('Usage', { key: 'sha256:remote' })).size).toBe(5_000_000_000);
  });

  it('Update with a field mask, and List streaming in batches of 100', async () => {
    const upd = await c.call<{ info: { labels: Record<string, string> } }>('Update', {
      info: { name: 'default/2/sha256:a', labels: { y: '2' } },
      update_mask: { paths: ['labels.y'] },
    });
    expect(upd.info.labels).toEqual({ x: '1', y: '2' });
    for (let i = 0; i < 250; i++) await c.call('Prepare', { key: `bulk/${i}`, parent: '' });
    const batches = await c.list([]);
    // 250 + the 3 snapshots made above.
    expect(batches.map((b) => b.length)).toEqual([100, 100, 53]);
    const active = (await c.list(['kind==active'])).flat();
    expect(active).toHaveLength(250);
    expect((await codeOf(c.list(['kind=']))).code).toBe(status.INVALID_ARGUMENT);
  });

  it('stamps Created and Updated in microseconds, equal at commit (as containerd does)', async () => {
    type Ts = { seconds: number; nanos: number };
    type Info = { created_at: Ts; updated_at: Ts };
    const ns = (t: Ts) => BigInt(t.seconds) * 1_000_000_000n + BigInt(t.nanos);
    const stamps: Info[] = [];
    for (let i = 0; i < 5; i++) {
      await c.call('Prepare', { key: `ts/${i}/a`, parent: '' });
      await c.call('Commit', { key: `ts/${i}/a`, name: `ts/${i}` });
      stamps.push((await c.call<{ info: Info }>('Stat', { key: `ts/${i}` })).info);
    }
    for (const s of stamps) expect(ns(s.updated_at)).toBe(ns(s.created_at));
    // Date.now()'s whole milliseconds would leave every nanos a multiple of 1e6; containerd's clients bracket
    // an Update with their own nanosecond clock.
    expect(stamps.some((s) => s.created_at.nanos % 1_000_000 !== 0)).toBe(true);
    const before = ns(stamps[4]!.created_at);
    const upd = await c.call<{ info: Info }>('Update', {
      info: { name: 'ts/4', labels: { z: '1' } },
      update_mask: { paths: ['labels.z'] },
    });
    expect(ns(upd.info.created_at)).toBe(before);
    expect(ns(upd.info.updated_at)).toBeGreaterThan(before);
  });

  it('Cleanup and Remove work, then shutdown removes the socket', async () => {
    await c.call('Remove', { key: 'bulk/0' });
    await c.call('Cleanup', {});
    expect((await codeOf(c.call('Stat', { key: 'bulk/0' }))).code).toBe(status.NOT_FOUND);
    await server.stop(1000);
    expect(() => statSync(socketPath())).toThrow();
  });
});
