// Issue 17: no pull fails because Ferry's daemon restarted. Real containerd with Ferry as its proxy snapshotter,
// the snapshots socket kept by the FUSE holder (self-managed) or by a socket-activation stand-in (systemd's
// ferry.socket): containerd started before any daemon works once one is up; a lazy pull issued the moment the
// next daemon process is spawned, after a SIGTERM and after a kill -9, succeeds.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonSocketPath } from '../../src/daemon/paths.js';
import { RegistryClient } from '../../src/registry/client.js';
import {
  BUSYBOX,
  CTR_REMOTE_BINARY,
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  startContainerd,
  startFerryDaemon,
  stopHolder,
  stopHolders,
  type RunningFerryDaemon,
  type TestContainerd,
} from '../helpers/containerd.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild, type FerryEnv } from '../helpers/ferry-cli.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { processGone } from '../helpers/wait.js';

const ACTIVATOR = join(import.meta.dirname, '../helpers/socket-activator.py');
const IMAGES = ['first', 'after-term', 'after-kill'];

let registry: TestRegistry;
let client: RegistryClient;

beforeAll(async () => {
  requireBinaries([CTR_REMOTE_BINARY, BUSYBOX, '/usr/bin/python3']);
  requireBuild();
  registry = await startRegistry();
  client = testRegistryClient();
  for (const mode of ['holder', 'activation'])
    for (const name of IMAGES) {
      const ref = `${registry.host}/${mode}:${name}`;
      await pushBusyboxApp(client, ref, `${mode} ${name}\n`, 256 << 10);
      await ferry(['index', ref, '--push'], ferryEnv());
    }
}, 120_000);

afterAll(async () => {
  await stopHolders();
  await client?.close();
  await registry?.stop();
});

/** The pid of the FUSE holder listening on `socket`, found by its command line. */
async function holderPid(socket: string): Promise<number | undefined> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const args = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const argv = args.split('\0');
    if (argv.includes('fuse-holder') && argv[argv.indexOf('--socket') + 1] === socket) return Number(pid);
  }
  return undefined;
}

function setup() {
  const env = ferryEnv('[snapshotter]\nremoteTimeoutMs = 20000\n\n[prefetch]\ndefaultBytesPerLayer = 0\n');
  const paths = {
    socketPath: join(env.dir, 'run', 'snapshotter.sock'),
    root: join(env.dir, 'state', 'snapshots'),
  };
  return { env, paths };
}

/** rpull of `ref` through Ferry; resolves with how long it took. Lazy: its two layers become FUSE mounts. */
async function rpull(ctd: TestContainerd, ref: string): Promise<number> {
  const t0 = performance.now();
  await ctd.ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref], {
    timeoutMs: 90_000,
  });
  return performance.now() - t0;
}

describe('self-managed: the FUSE holder keeps the snapshots socket', () => {
  let env: FerryEnv;
  let paths: { socketPath: string; root: string };
  let holder: ChildProcess;
  let ctd: TestContainerd;
  let daemon: RunningFerryDaemon | undefined;
  const ref = (n: string) => `${registry.host}/holder:${n}`;

  beforeAll(async () => {
    ({ env, paths } = setup());
    // Started first, as a service manager would: the socket exists before containerd and before any daemon.
    holder = spawn(
      process.execPath,
      [
        FERRY_BIN,
        'fuse-holder',
        '--socket',
        join(env.dir, 'run', 'fuse-holder.sock'),
        '--idle-exit-ms',
        '0',
        '--snapshots-socket',
        paths.socketPath,
        '--snapshots-target',
        daemonSocketPath(paths.socketPath),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, UV_THREADPOOL_SIZE: '64' } },
    );
    const deadline = Date.now() + 10_000;
    while (!existsSync(paths.socketPath)) {
      if (Date.now() > deadline) throw new Error('the holder did not create the snapshots socket');
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 30_000);

  afterAll(async () => {
    await ctd?.stop();
    await daemon?.stop().catch(() => undefined);
    await stopHolder(holder?.pid);
    expect(await fuseMountsBelow(paths.root)).toEqual([]);
  });

  it('containerd started before any daemon pulls as soon as one is up', async () => {
    ctd = await startContainerd({ snapshotterSocket: paths.socketPath });
    // Issued with no daemon at all: the holder accepts and keeps the connection until a daemon serves it.
    const pull = rpull(ctd, ref('first'));
    await new Promise((r) => setTimeout(r, 1500));
    daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
    expect(daemon.holderPid).toBe(holder.pid);
    expect(daemon.stderr()).toContain('"via":"holder"');
    const ms = await pull;
    console.log(`pull issued 1.5 s before the daemon started: ${Math.round(ms)} ms`);
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
  }, 120_000);

  for (const signal of ['SIGTERM', 'SIGKILL'] as const)
    it(`a lazy pull issued as the next daemon spawns after a ${signal} succeeds`, async () => {
      const code = await daemon!.stop(signal);
      expect(code).toBe(signal === 'SIGTERM' ? 0 : null);
      const next = startFerryDaemon(FERRY_BIN, env.configPath, paths); // spawns now; ready later
      const name = signal === 'SIGTERM' ? 'after-term' : 'after-kill';
      const pull = rpull(ctd, ref(name));
      daemon = await next;
      const ms = await pull;
      console.log(`pull issued at the spawn after ${signal}: ${Math.round(ms)} ms`);
      expect(await fuseMountsBelow(paths.root)).toHaveLength(signal === 'SIGTERM' ? 4 : 6);
      expect(ctd.log()).not.toMatch(/connection closed|Error while dialing/);
    }, 120_000);
});

describe('under systemd: ferry.socket keeps the snapshots socket (socket activation)', () => {
  let env: FerryEnv;
  let paths: { socketPath: string; root: string };
  let activator: ChildProcess;
  let ctd: TestContainerd;
  let stderr = '';
  const spawned: number[] = [];
  const spawnWaiters: Array<() => void> = [];
  const ref = (n: string) => `${registry.host}/activation:${n}`;
  const nextSpawn = (n: number) =>
    new Promise<number>((r) => {
      const check = () => (spawned.length >= n ? r(spawned[n - 1]!) : spawnWaiters.push(check));
      check();
    });
  const readyCount = () => stderr.split('"ferry daemon ready"').length - 1;
  const untilReady = async (n: number) => {
    const deadline = Date.now() + 60_000;
    while (readyCount() < n) {
      if (Date.now() > deadline) throw new Error(`daemon ${n} not ready: ${stderr.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    ({ env, paths } = setup());
    activator = spawn(
      'python3',
      [ACTIVATOR, paths.socketPath, process.execPath, FERRY_BIN, 'daemon', '--config', env.configPath],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    activator.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-500_000)));
    createInterface({ input: activator.stdout! }).on('line', (l) => {
      const m = /^spawned (\d+)$/.exec(l);
      if (m === null) return;
      spawned.push(Number(m[1]));
      for (const w of spawnWaiters.splice(0)) w();
    });
    await nextSpawn(1);
  }, 30_000);

  afterAll(async () => {
    await ctd?.stop();
    activator?.kill('SIGTERM');
    for (const pid of spawned) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        continue; // exited already
      }
      await processGone(pid);
    }
    // The holder keeps the layers mounted past the daemons (by design): stop it by its socket, looked up only
    // now that no daemon is left to start one.
    await stopHolder(await holderPid(join(env.dir, 'run', 'fuse-holder.sock')));
    expect(await fuseMountsBelow(paths.root)).toEqual([]);
  });

  it('serves the inherited socket, never binding or removing the path', async () => {
    // containerd comes up while the first daemon is still starting: its connection waits in the backlog.
    ctd = await startContainerd({ snapshotterSocket: paths.socketPath });
    await rpull(ctd, ref('first'));
    await untilReady(1);
    expect(stderr).toContain('"via":"systemd socket"');
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
  }, 120_000);

  for (const [i, signal] of (['SIGTERM', 'SIGKILL'] as const).entries())
    it(`a lazy pull issued as the next daemon spawns after a ${signal} succeeds`, async () => {
      const current = spawned.at(-1)!;
      process.kill(current, signal);
      await nextSpawn(i + 2); // the supervisor spawned the successor (its ready line comes later)
      const ms = await rpull(ctd, ref(signal === 'SIGTERM' ? 'after-term' : 'after-kill'));
      console.log(`activation: pull issued at the spawn after ${signal}: ${Math.round(ms)} ms`);
      await untilReady(i + 2);
      expect(existsSync(paths.socketPath)).toBe(true); // the daemon that stopped left systemd's socket alone
      expect(await fuseMountsBelow(paths.root)).toHaveLength(signal === 'SIGTERM' ? 4 : 6);
    }, 120_000);
});
