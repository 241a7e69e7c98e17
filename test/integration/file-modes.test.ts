// Everything Ferry leaves on a node is its user's alone: a real `ferry daemon` mounts and reads an image through
// the snapshots API (chunks, indexes, traces, metadata, sockets), a real `ferry mount` of the same image shares
// its state and cache; then no file below stateDir or the cache dir is group/other accessible, those dirs and
// `<runDir>/mnt` are 0700 (an existing stateDir too: it is tightened at start-up), and every socket has its
// documented mode: snapshots 0660, status, prefetch hints and the FUSE holder 0600.
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import type { SnapshotsClient } from '../api/grpc-client.js';
import {
  BUSYBOX,
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  stopHolders,
  type BusyboxApp,
  type RunningFerryDaemon,
} from '../helpers/containerd.js';
import { prepareWithCriLabels } from '../helpers/cri-prepare.js';
import { ferry, ferryEnv, requireBuild, startMount, type FerryEnv } from '../helpers/ferry-cli.js';
import { diffId } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { startSnapshotsNode, type SnapshotsNode } from '../helpers/snapshots-node.js';

const run = promisify(execFile);

let registry: TestRegistry;
let client: RegistryClient;
let app: BusyboxApp;
let env: FerryEnv;
let node: SnapshotsNode;
let daemon: RunningFerryDaemon;
let grpc: SnapshotsClient;

interface Found {
  path: string;
  kind: 'file' | 'dir' | 'socket' | 'other';
  mode: number;
}

/** Every path below `dir`, not descending into mount points or snapshot `fs` dirs (a container's files). */
async function walk(dir: string, skip: ReadonlySet<string>): Promise<Found[]> {
  const out: Found[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    const kind = st.isSocket() ? 'socket' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
    out.push({ path, kind, mode: st.mode & 0o7777 });
    if (kind === 'dir' && !skip.has(path) && !(name === 'fs' && path.includes('/snapshots/')))
      out.push(...(await walk(path, skip)));
  }
  return out;
}

async function mountPoints(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return new Set(text.split('\n').map((l) => l.split(' ')[4] ?? ''));
}

beforeAll(async () => {
  requireBinaries([BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  client = testRegistryClient();
  app = await pushBusyboxApp(client, `${registry.host}/modes:1`, 'private\n', 4 << 20);
  env = ferryEnv('[metrics]\nenabled = false\n');
  // A state dir that exists, world-readable, before Ferry first starts: it must be tightened.
  await mkdir(join(env.dir, 'state'), { mode: 0o755 });
  await chmod(join(env.dir, 'state'), 0o755);
  node = await startSnapshotsNode(env);
  ({ daemon, client: grpc } = node);
}, 180_000);

afterAll(async () => {
  await node?.stop();
  await stopHolders();
  await client?.close();
  await registry?.stop();
});

describe('file and socket modes', () => {
  it('no file below stateDir or the cache is group/other accessible; sockets have their documented modes', async () => {
    const ref = `${registry.host}/modes:1`;
    const { codes } = await prepareWithCriLabels(grpc, {
      ref,
      manifestDigest: app.pushed.manifestDigest,
      layerDigests: app.pushed.manifest.layers.map((l) => l.digest),
      diffIds: app.layers.map(diffId),
    });
    expect(codes).toEqual([status.ALREADY_EXISTS, status.ALREADY_EXISTS]);
    const layers = await fuseMountsBelow(daemon.root);
    // Read every file of both layers through the daemon's FUSE mounts: chunks land in the cache.
    const readAll = 'for m in "$@"; do find "$m" -type f -exec cat {} + >/dev/null; done';
    await run('sh', ['-c', readAll, 'sh', ...layers]);
    expect(layers).toHaveLength(2);

    const target = join(env.dir, 'rootfs');
    const m = await startMount(ref, target, env);
    let during: Found[];
    try {
      await run('cat', [join(target, 'data/big.bin'), join(target, 'hello.txt')], { maxBuffer: 64 << 20 });
      during = await walk(join(env.dir, 'run'), await mountPoints());
    } finally {
      await ferry(['umount', target], env);
      await m.exited;
    }

    const skip = await mountPoints();
    const state = join(env.dir, 'state');
    const found = await walk(state, skip);
    const files = found.filter((f) => f.kind === 'file');
    // Something of every kind was written: chunks, indexes, snapshot metadata (and its WAL).
    expect(files.some((f) => f.path.includes('/chunks/'))).toBe(true);
    expect(files.some((f) => f.path.includes('/indexes/'))).toBe(true);
    expect(files.some((f) => f.path.endsWith('.db'))).toBe(true);
    const open = files.filter((f) => (f.mode & 0o077) !== 0).map((f) => `${f.path} ${f.mode.toString(8)}`);
    expect(open).toEqual([]);
    expect(found.filter((f) => f.kind === 'socket' || f.kind === 'other')).toEqual([]);
    for (const dir of [state, join(state, 'chunks'), join(state, 'indexes'), join(state, 'snapshots')])
      expect(((await lstat(dir)).mode & 0o777).toString(8), dir).toBe('700');
    // Private dirs hold the rest; only snapshot dirs that containerd's overlay needs wider are wider.
    const wide = found
      .filter((f) => f.kind === 'dir' && (f.mode & 0o077) !== 0)
      .filter((f) => !/\/snapshots\/snapshots\/\d+\/(fs|work)$/.test(f.path));
    expect(wide.map((f) => `${f.path} ${f.mode.toString(8)}`)).toEqual([]);

    const want: Record<string, number> = {
      'snapshotter.sock': 0o660,
      'ferry.sock': 0o600,
      'prefetch.sock': 0o600,
      'fuse-holder.sock': 0o600,
      // Behind the holder, which keeps snapshotter.sock across restarts, the daemon serves its own socket.
      'snapshotter-daemon.sock': 0o600,
    };
    const sockets = Object.fromEntries(
      during
        .filter((f) => f.kind === 'socket')
        .map((f) => [f.path.slice(join(env.dir, 'run').length + 1), f.mode]),
    );
    expect(Object.keys(sockets).sort()).toEqual(Object.keys(want).sort());
    for (const [name, mode] of Object.entries(want))
      expect(sockets[name]?.toString(8), name).toBe(mode.toString(8));
    const mnt = during.find((f) => f.path === join(env.dir, 'run', 'mnt'));
    expect(mnt?.mode.toString(8)).toBe('700');
    // No private bind dir is left behind.
    expect(during.filter((f) => f.path.includes('/.sock-'))).toEqual([]);
  });
});
