// Materialised layers under containerd (Debian's containerd, runc, ctr-remote; Ferry as the proxy snapshotter):
// an image pulled lazily runs a container on the FUSE mounts; once every byte is local, Ferry writes each layer
// out as a plain dir; the next container's overlay uses those dirs, while the first keeps its FUSE lowers and
// still reads right; a daemon restart keeps both; removing the image removes the dirs.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import {
  CTR_REMOTE_BINARY,
  BUSYBOX,
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  startContainerd,
  startFerryDaemon,
  stopHolder,
  type RunningFerryDaemon,
  type TestContainerd,
} from '../helpers/containerd.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild, type FerryEnv } from '../helpers/ferry-cli.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';

let registry: TestRegistry;
let client: RegistryClient;
let env: FerryEnv;
let paths: { socketPath: string; root: string };
let daemon: RunningFerryDaemon;
let ctd: TestContainerd;
let ref: string;
const started: string[] = [];

beforeAll(async () => {
  requireBinaries([CTR_REMOTE_BINARY, BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  client = testRegistryClient();
  ref = `${registry.host}/app:mat`;
  await pushBusyboxApp(client, ref, 'hello from a materialised layer\n', 6 * 1024 * 1024);
  await ferry(['index', ref, '--push'], ferryEnv());
  // `cached`, no delay: a layer becomes a plain dir as soon as a new mount finds all its bytes local. No prefetch,
  // so the first container is sure to start on FUSE.
  env = ferryEnv(
    '[snapshotter]\nremoteTimeoutMs = 20000\nmaterialise = "cached"\nmaterialiseDelayMs = 0\n\n[prefetch]\nenabled = false\n',
  );
  paths = { socketPath: join(env.dir, 'run', 'snapshotter.sock'), root: join(env.dir, 'state', 'snapshots') };
  daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
  ctd = await startContainerd({ snapshotterSocket: paths.socketPath });
}, 170_000);

afterAll(async () => {
  for (const id of started) await ctd?.ctr(['task', 'kill', '-s', 'KILL', id]).catch(() => undefined);
  for (const id of started) {
    await ctd?.ctr(['task', 'rm', '-f', id]).catch(() => undefined);
    await ctd?.ctr(['container', 'rm', id]).catch(() => undefined);
  }
  await ctd?.stop();
  await daemon?.stop().catch(() => undefined);
  await stopHolder(daemon?.holderPid).catch(() => undefined);
  await client?.close();
  await registry?.stop();
});

/** The lowerdir of each overlay mounted from Ferry's snapshots, from this namespace's mountinfo. */
async function overlayLowers(): Promise<string[][]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter((l) => l.includes(' - overlay ') && l.includes(paths.root))
    .map((l) => /lowerdir=([^,\s]+)/.exec(l)?.[1]?.split(':') ?? []);
}

async function runDetached(id: string): Promise<void> {
  await ctd.ctr(['run', '-d', '--snapshotter', 'ferry', ref, id, '/bin/busybox', 'sleep', '600']);
  started.push(id);
}

const exec = async (id: string, ...cmd: string[]) =>
  (await ctd.ctr(['task', 'exec', '--exec-id', `e${Date.now()}`, id, ...cmd])).stdout;

describe('materialised layers under containerd', () => {
  it('a new container uses plain dirs once every byte is local; a running one keeps FUSE and reads right', async () => {
    await ctd.ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref], {
      timeoutMs: 90_000,
    });
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
    // The first container starts on FUSE (nothing is local yet), then reads everything: every chunk is cached.
    await runDetached('first');
    const [firstLowers] = await overlayLowers();
    expect(firstLowers).toHaveLength(2);
    expect(firstLowers!.every((d) => d.endsWith('/fs'))).toBe(true);
    const all = 'cat /bin/busybox /etc/ferry-test-image /hello.txt /data/big.bin | /bin/busybox md5sum';
    const sum = (await exec('first', '/bin/busybox', 'sh', '-c', all)).trim();
    // The next Prepare finds both layers local and starts materialising them.
    await runDetached('second');
    const deadline = Date.now() + 60_000;
    while ((daemon.stderr().match(/"layer materialised"/g) ?? []).length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect((daemon.stderr().match(/"layer materialised"/g) ?? []).length, daemon.stderr().slice(-4000)).toBe(
      2,
    );
    await new Promise((r) => setTimeout(r, 200)); // the metadata write follows the log line

    await runDetached('third');
    const lowers = await overlayLowers();
    expect(lowers).toHaveLength(3);
    // The third (and the second too, when its task started after the dirs were done) has plain lowers only; the
    // first still has its FUSE ones.
    expect(lowers.filter((l) => l.length === 2 && l.every((d) => d.endsWith('/mat'))).length).toBeGreaterThan(
      0,
    );
    expect(lowers.filter((l) => l.length === 2 && l.every((d) => d.endsWith('/fs'))).length).toBeGreaterThan(
      0,
    );
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);

    for (const id of ['first', 'second', 'third']) {
      expect(await exec(id, '/bin/busybox', 'cat', '/hello.txt')).toBe('hello from a materialised layer\n');
      expect((await exec(id, '/bin/busybox', 'sh', '-c', all)).trim()).toBe(sum);
    }
    const snaps = await ctd.ctr(['snapshot', '--snapshotter', 'ferry', 'mounts', '/mnt', 'third']);
    expect(snaps.stdout).toMatch(/lowerdir=\S+\/mat:\S+\/mat/);
  });

  it('a daemon restart keeps the plain dirs for new containers and the FUSE mounts for running ones', async () => {
    expect(await daemon.stop('SIGTERM')).toBe(0);
    daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
    await ctd.waitForSnapshotter();
    expect(daemon.stderr()).not.toContain('"layer materialised"'); // nothing written again
    await runDetached('fourth');
    const lowers = await overlayLowers();
    expect(lowers).toHaveLength(4);
    expect(lowers.filter((l) => l.every((d) => d.endsWith('/mat'))).length).toBeGreaterThanOrEqual(2);
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2); // adopted for the running containers
    for (const id of ['first', 'fourth'])
      expect(await exec(id, '/bin/busybox', 'cat', '/hello.txt')).toBe('hello from a materialised layer\n');
  });

  it('removing the containers and the image removes the plain dirs and the FUSE mounts', async () => {
    const dirs = [...new Set((await overlayLowers()).flat().filter((d) => d.endsWith('/mat')))];
    expect(dirs).toHaveLength(2);
    for (const id of started.splice(0)) {
      await ctd.ctr(['task', 'kill', '-s', 'KILL', id]).catch(() => undefined);
      await ctd.ctr(['task', 'rm', '-f', id]);
      await ctd.ctr(['container', 'rm', id]);
    }
    await ctd.waitForSnapshotter();
    await ctd.ctr(['image', 'rm', '--sync', ref], { timeoutMs: 20_000 });
    const deadline = Date.now() + 20_000;
    while (dirs.some((d) => existsSync(d)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(dirs.filter((d) => existsSync(d))).toEqual([]);
    expect(await fuseMountsBelow(paths.root)).toEqual([]);
  });
});
