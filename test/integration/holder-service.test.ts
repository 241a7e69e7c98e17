// The service-manager arrangement (systemd's ferry-fuse.service + `ferry daemon --no-spawn-holder`, or the
// ferry-fuse DaemonSet): the holder is started on its own, as its unit's ExecStart does; the daemon never starts
// one, waits for it if it comes up later, and a daemon restart finds the same holder with the layers mounted.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import { snapshotsClient } from '../api/grpc-client.js';
import { prepareWithCriLabels } from '../helpers/cri-prepare.js';
import { diffId } from '../helpers/push-image.js';
import {
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  BUSYBOX,
  startFerryDaemon,
  type BusyboxApp,
  type RunningFerryDaemon,
} from '../helpers/containerd.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild, type FerryEnv } from '../helpers/ferry-cli.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { until } from '../helpers/wait.js';

let registry: TestRegistry;
let client: RegistryClient;
let env: FerryEnv;
let paths: { socketPath: string; root: string };
let holderSocket: string;
let holder: ChildProcess | undefined;
let holderLog = '';
let daemon: RunningFerryDaemon | undefined;
let app: BusyboxApp;
const ref = () => `${registry.host}/svc:1`;

/** `ferry fuse-holder` as systemd/ferry-fuse.service runs it (its own process, never orphaned out). */
function startHolderService(): ChildProcess {
  const child = spawn(
    process.execPath,
    [FERRY_BIN, 'fuse-holder', '--socket', holderSocket, '--orphan-timeout-ms', '0'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, UV_THREADPOOL_SIZE: '520' } },
  );
  child.stderr.on('data', (b: Buffer) => (holderLog += b.toString()));
  return child;
}

beforeAll(async () => {
  requireBinaries([BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  client = testRegistryClient();
  app = await pushBusyboxApp(client, ref(), 'hello from a service-managed holder\n', 1 << 20);
  await ferry(['index', ref(), '--push'], ferryEnv());
  env = ferryEnv('[prefetch]\ndefaultBytesPerLayer = 0\n');
  holderSocket = join(env.dir, 'run', 'fuse-holder.sock');
  paths = { socketPath: join(env.dir, 'run', 'snapshotter.sock'), root: join(env.dir, 'state', 'snapshots') };
}, 120_000);

afterAll(async () => {
  await daemon?.stop().catch(() => undefined);
  if (holder !== undefined && holder.exitCode === null) {
    holder.kill('SIGTERM');
    await new Promise((r) => holder!.once('exit', r));
  }
  await client?.close();
  await registry?.stop();
});

describe('a holder run by a service manager', () => {
  it('a daemon started first waits for it (never starts its own), then serves through it', async () => {
    let waiting = false;
    const starting = startFerryDaemon(
      FERRY_BIN,
      env.configPath,
      paths,
      30_000,
      ['--no-spawn-holder'],
      (e) => {
        waiting ||= e.includes('"waiting for the FUSE holder"');
      },
    );
    await until('the daemon to wait for the holder', () => waiting);
    holder = startHolderService();
    daemon = await starting;
    expect(daemon.stderr()).toContain('"waiting for the FUSE holder"');
    expect(daemon.stderr()).not.toContain('"started a FUSE holder"');
    expect(daemon.holderPid).toBe(holder.pid);

    const c = await snapshotsClient(paths.socketPath);
    try {
      const { codes } = await prepareWithCriLabels(c, {
        ref: ref(),
        manifestDigest: app.pushed.manifestDigest,
        layerDigests: app.pushed.manifest.layers.map((l) => l.digest),
        diffIds: app.layers.map(diffId),
      });
      expect(codes).toEqual([6, 6]); // ALREADY_EXISTS: both layers mounted lazily, through the holder
    } finally {
      c.close();
    }
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
  });

  it('the daemon restarts (kill -9, as Restart=on-failure sees it) and adopts the layers from the same holder', async () => {
    const mounts = await fuseMountsBelow(paths.root);
    expect(await daemon!.stop('SIGKILL')).toBeNull();
    expect(await fuseMountsBelow(paths.root)).toEqual(mounts);
    daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths, 30_000, ['--no-spawn-holder']);
    expect(daemon.holderPid).toBe(holder!.pid);
    expect(daemon.stderr().match(/"layer adopted from the holder"/g)).toHaveLength(2);
    expect(holderLog.match(/"msg":"attached"/g)).toHaveLength(2); // the holder's view: both mounts taken over
  });

  it('stopping the holder service unmounts the layers', async () => {
    expect(await daemon!.stop('SIGTERM')).toBe(0);
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
    holder!.kill('SIGTERM');
    expect(await new Promise((r) => holder!.once('exit', (code) => r(code)))).toBe(0);
    expect(await fuseMountsBelow(paths.root)).toEqual([]);
  });
});
