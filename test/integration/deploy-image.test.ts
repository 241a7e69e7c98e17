// Issue 17: Ferry's OCI image as the DaemonSets run it. scripts/build-image.sh builds it (no base-image download),
// a containerd of the test's own runs the holder and the daemon from it (`ctr run --privileged`, the host paths
// the DaemonSets mount, config file + FERRY_* env + a mounted secret), and that same containerd pulls an image
// lazily through the containerized daemon: the snapshots socket and the FUSE mounts appear on the host.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import {
  BUSYBOX,
  CTR_REMOTE_BINARY,
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  startContainerd,
  type TestContainerd,
} from '../helpers/containerd.js';
import { requireBuild } from '../helpers/ferry-cli.js';
import { startRegistry, type TestRegistry, testRegistryClient, freePort } from '../helpers/registry.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const MMDEBSTRAP = '/usr/bin/mmdebstrap';
/** The image archive lives in a stable dir (and mmdebstrap's base layer in /var/cache/ferry-image). */
const IMAGE_OUT = join(ROOT, 'build', 'image');

let registry: TestRegistry;
let client: RegistryClient;
let ctd: TestContainerd;
let dir: string; // the "host" paths: <dir>/state = /var/lib/ferry, <dir>/run = /run/ferry
let image: string;
let metricsPort: number;
let buildSeconds: number;
const started: string[] = [];
const APP = 'deploy/app:1';

/** A bind mount of `src` at the same path inside, shared both ways (the DaemonSet's Bidirectional hostPath). */
const shared = (p: string) => `type=bind,src=${p},dst=${p},options=rbind:rshared:rw`;

/** `ctr run -d --privileged --net-host` of the Ferry image, as the DaemonSets' pods run it. */
async function runFerryContainer(id: string, args: string[], extra: string[] = []): Promise<void> {
  await ctd.ctr([
    'run',
    '-d',
    '--privileged',
    '--net-host',
    '--rootfs-propagation',
    'rshared',
    '--log-uri',
    `file://${dir}/logs/${id}.log`,
    '--mount',
    'type=bind,src=/dev/fuse,dst=/dev/fuse,options=bind:rw',
    '--mount',
    shared(join(dir, 'state')),
    '--mount',
    shared(join(dir, 'run')),
    ...extra,
    image,
    id,
    ...args,
  ]);
  started.push(id);
}

const logOf = (id: string) => {
  try {
    return readFileSync(join(dir, 'logs', `${id}.log`), 'utf8').slice(-6000);
  } catch {
    return '(no log)';
  }
};

async function get(path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}${path}`);
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  requireBinaries([CTR_REMOTE_BINARY, BUSYBOX, MMDEBSTRAP]);
  requireBuild();
  const t0 = performance.now();
  const built = await run('bash', [join(ROOT, 'scripts/build-image.sh'), '--no-build', '--out', IMAGE_OUT], {
    timeout: 600_000,
    maxBuffer: 16 << 20,
  }).catch((e: unknown) => {
    const x = e as { stderr?: string; message: string };
    throw new Error(`scripts/build-image.sh failed: ${x.message}\n${x.stderr ?? ''}`);
  });
  buildSeconds = (performance.now() - t0) / 1000;
  const [archive, name] = built.stdout.trim().split('\n').slice(-2);
  image = name!;
  console.log(`image built in ${buildSeconds.toFixed(1)} s: ${built.stderr.trim().split('\n').at(-1)}`);

  registry = await startRegistry();
  client = testRegistryClient();
  await pushBusyboxApp(client, `${registry.host}/${APP}`, 'served from the image\n', 1 << 20);

  dir = mkdtempSync(join(tmpdir(), 'ferry-deploy-'));
  for (const d of ['state', 'run', 'logs', 'etc', 'secret']) mkdirSync(join(dir, d));
  // Kubernetes' Bidirectional propagation needs the host path on a shared mount; the test makes its own.
  await run('mount', ['--bind', dir, dir]);
  await run('mount', ['--make-rshared', dir]);
  ctd = await startContainerd({ snapshotterSocket: join(dir, 'run', 'snapshotter.sock') });
  await ctd.ctr(['images', 'import', archive!], { timeoutMs: 180_000 });
}, 900_000);

afterAll(async () => {
  for (const id of started.reverse()) {
    await ctd.ctr(['task', 'kill', '-s', 'SIGTERM', id]).catch(() => undefined);
    for (let i = 0; i < 100; i++) {
      const { stdout } = await ctd.ctr(['task', 'ls']).catch(() => ({ stdout: '' }));
      if (!stdout.includes(id) || /STOPPED/.test(stdout.split('\n').find((l) => l.startsWith(id)) ?? ''))
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await ctd.ctr(['task', 'kill', '-s', 'SIGKILL', id]).catch(() => undefined);
    await ctd.ctr(['task', 'delete', '-f', id]).catch(() => undefined);
    await ctd.ctr(['container', 'delete', id]).catch(() => undefined);
  }
  await ctd?.stop();
  if (dir !== undefined) {
    await run('sh', [
      '-c',
      `grep -o " ${dir}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`,
    ]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  await client?.close();
  await registry?.stop();
}, 120_000);

describe('the Ferry image under containerd, mounted as the DaemonSets mount it', () => {
  it('has only runtime packages and runs `ferry --version` on its own Node 24', async () => {
    const { stdout } = await ctd.ctr(['run', '--rm', image, 'version-check', 'ferry', '--version']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(stdout.trim()).toBe(pkg.version);
    const probe = await ctd.ctr([
      'run',
      '--rm',
      image,
      'package-check',
      'sh',
      '-c',
      'node --version; for p in gcc make python3 g++ apt; do command -v $p || true; done; ' +
        'dpkg-query -W -f="\\${Package}\\n" ca-certificates libfuse2 libstdc++6 mount | sort',
    ]);
    const lines = probe.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^v24\./);
    // The runtime packages, and no compiler, no python, no apt.
    expect(lines.slice(1)).toEqual(['ca-certificates', 'libfuse2', 'libstdc++6', 'mount']);
  }, 120_000);

  it('serves the snapshots API on the host socket and a lazy mount visible on the host', async () => {
    metricsPort = await freePort();
    const p2pPort = await freePort();
    const secret = join(dir, 'secret');
    writeFileSync(join(secret, 'secret'), randomBytes(32).toString('base64'));
    // The ConfigMap's file; the pod-specific values come as FERRY_* variables, as the DaemonSet gives them.
    writeFileSync(
      join(dir, 'etc', 'config.toml'),
      '[p2p]\nenabled = true\nclusterSecretFile = "/etc/ferry/secret/secret"\n\n' +
        '[snapshotter]\nremoteTimeoutMs = 30000\n',
    );
    await runFerryContainer('ferry-fuse', [
      'ferry',
      'fuse-holder',
      '--socket',
      join(dir, 'run', 'fuse-holder.sock'),
      '--orphan-timeout-ms',
      '0',
      '--idle-exit-ms',
      '0',
      '--snapshots-socket',
      join(dir, 'run', 'snapshotter.sock'),
      '--snapshots-target',
      join(dir, 'run', 'snapshotter-daemon.sock'),
    ]);
    await runFerryContainer(
      'ferry',
      ['ferry', 'daemon', '--config', '/etc/ferry/config/config.toml', '--no-spawn-holder'],
      [
        '--mount',
        `type=bind,src=${join(dir, 'etc')},dst=/etc/ferry/config,options=rbind:ro`,
        '--mount',
        `type=bind,src=${secret},dst=/etc/ferry/secret,options=rbind:ro`,
        '--env',
        `FERRY_DAEMON_STATE_DIR=${join(dir, 'state')}`,
        '--env',
        `FERRY_DAEMON_RUN_DIR=${join(dir, 'run')}`,
        '--env',
        `FERRY_P2P_LISTEN=127.0.0.1:${p2pPort}`,
        '--env',
        `FERRY_P2P_ADVERTISE=127.0.0.2:${p2pPort}`, // the DaemonSet's status.podIP: an id, not the bind
        '--env',
        `FERRY_METRICS_ADDRESS=127.0.0.1:${metricsPort}`,
      ],
    );
    // The readiness probe: /readyz answers 200 once the daemon serves.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ready = await get('/readyz').catch(() => ({ status: 0, body: '' }));
      if (ready.status === 200) break;
      if (Date.now() > deadline)
        throw new Error(
          `/readyz not 200 within 60 s\nferry: ${logOf('ferry')}\nholder: ${logOf('ferry-fuse')}`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
    expect((await get('/healthz')).status).toBe(200);
    expect(logOf('ferry')).toContain(`serving peers on 127.0.0.1:${p2pPort} as 127.0.0.2:${p2pPort}`);

    await ctd.waitForSnapshotter();
    const ref = `${registry.host}/${APP}`;
    await ctd
      .ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref], { timeoutMs: 90_000 })
      .catch((e: unknown) => {
        const logs = `containerd: ${ctd.log().slice(-6000)}\nferry: ${logOf('ferry')}\nholder: ${logOf('ferry-fuse')}`;
        throw new Error(`${(e as Error).message}\n${logs}`);
      });
    // Mounted inside the container, visible (and used by containerd's overlay) on the host.
    expect(await fuseMountsBelow(join(dir, 'state'))).toHaveLength(2);
    const { stdout } = await ctd.ctr([
      'run',
      '--rm',
      '--snapshotter',
      'ferry',
      ref,
      'app',
      '/bin/busybox',
      'cat',
      '/hello.txt',
    ]);
    expect(stdout).toBe('served from the image\n');
    const metrics = await get('/metrics');
    expect(metrics.body).toMatch(/^ferry_/m);
  }, 180_000);
});
