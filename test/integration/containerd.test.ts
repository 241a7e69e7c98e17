// Ferry as containerd's remote snapshotter, end to end with Debian's containerd, runc, ctr and ctr-remote: the
// ordinary (fallback) pull path, the lazy path through FUSE with registry bytes counted, bad gRPC requests,
// a daemon restart between pull and run, and a clean SIGTERM shutdown.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { daemonSocketPath } from '../../src/daemon/paths.js';
import { RegistryClient } from '../../src/registry/client.js';
import { snapshotsClient } from '../api/grpc-client.js';
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
import { FaultProxy } from '../helpers/fault-proxy.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild, type FerryEnv } from '../helpers/ferry-cli.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { processGone } from '../helpers/wait.js';

const BIG_BYTES = 24 * 1024 * 1024;

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let env: FerryEnv;
let paths: { socketPath: string; root: string };
let daemon: RunningFerryDaemon;
let ctd: TestContainerd;
let lazyLayerBytes = 0;

beforeAll(async () => {
  requireBinaries([CTR_REMOTE_BINARY, BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  await pushBusyboxApp(client, `${registry.host}/app:plain`, 'hello from the ordinary path\n', BIG_BYTES);
  const lazy = await pushBusyboxApp(
    client,
    `${registry.host}/app:lazy`,
    'hello from a lazy layer\n',
    BIG_BYTES,
  );
  lazyLayerBytes = lazy.layerBytes;
  // Publish the lazy image's layer indexes (as `ferry index --push` on a build machine would).
  await ferry(['index', `${registry.host}/app:lazy`, '--push'], ferryEnv());

  // Counts demand-fetched bytes: no mount-time default prefetch (prefetch wiring, src/prefetch/).
  env = ferryEnv('[snapshotter]\nremoteTimeoutMs = 20000\n\n[prefetch]\ndefaultBytesPerLayer = 0\n');
  paths = { socketPath: join(env.dir, 'run', 'snapshotter.sock'), root: join(env.dir, 'state', 'snapshots') };
  daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
  ctd = await startContainerd({ snapshotterSocket: paths.socketPath });
}, 170_000);

afterAll(async () => {
  await ctd?.stop();
  await daemon?.stop().catch(() => undefined);
  await stopHolder(daemon?.holderPid).catch(() => undefined);
  await proxy?.stop();
  await client?.close();
  await registry?.stop();
});

const waitForReconnect = () => ctd.waitForSnapshotter();

describe('ferry daemon under containerd', () => {
  it('serves the socket with mode 0660 and registers as proxy snapshotter "ferry"', async () => {
    expect(statSync(paths.socketPath).mode & 0o777).toBe(0o660);
    const { stdout } = await ctd.ctr(['plugins', 'ls']);
    expect(stdout).toMatch(/io\.containerd\.snapshotter\.v1\s+ferry\s+\S+\s+ok/);
  });

  it('ordinary path: ctr image pull unpacks into Ferry snapshots and ctr run reads the file', async () => {
    const ref = `${registry.host}/app:plain`;
    const t0 = performance.now();
    await ctd.ctr(['image', 'pull', '--plain-http', '--snapshotter', 'ferry', ref], { timeoutMs: 90_000 });
    console.log(`ordinary: pull + unpack ${Math.round(performance.now() - t0)} ms`);
    const { stdout } = await ctd.ctr([
      'run',
      '--rm',
      '--snapshotter',
      'ferry',
      ref,
      'c-plain',
      '/bin/busybox',
      'cat',
      '/hello.txt',
    ]);
    expect(stdout).toBe('hello from the ordinary path\n');
    // Nothing was mounted lazily: without image/layer labels every layer is an ordinary snapshot.
    expect(await fuseMountsBelow(paths.root)).toEqual([]);
    const snaps = await ctd.ctr(['snapshot', '--snapshotter', 'ferry', 'ls']);
    expect(snaps.stdout.split('\n').filter((l) => l.includes('Committed'))).toHaveLength(2);
  });

  it('lazy path: ctr-remote rpull mounts layers through FUSE and a run fetches a fraction of the bytes', async () => {
    const ref = `${proxy.host}/app:lazy`;
    proxy.resetStats();
    const t0 = performance.now();
    await ctd.ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref], {
      timeoutMs: 90_000,
    });
    const pullMs = performance.now() - t0;
    const mounts = await fuseMountsBelow(paths.root);
    expect(mounts, daemon.stderr().slice(-8000)).toHaveLength(2); // the daemon's log says why, if not
    expect(daemon.stderr()).toContain('"remote snapshot prepared"');
    const afterPull = { ...proxy.stats };

    const { stdout } = await ctd.ctr([
      'run',
      '--rm',
      '--snapshotter',
      'ferry',
      ref,
      'c-lazy',
      '/bin/busybox',
      'cat',
      '/hello.txt',
    ]);
    expect(stdout).toBe('hello from a lazy layer\n');
    const fraction = proxy.stats.blobBytes / lazyLayerBytes;
    console.log(
      `lazy: rpull ${Math.round(pullMs)} ms, blob bytes after pull ${afterPull.blobBytes}, after run ${proxy.stats.blobBytes} ` +
        `of ${lazyLayerBytes} layer bytes (${(fraction * 100).toFixed(1)}%), ${proxy.stats.rangeRequests} range requests`,
    );
    expect(proxy.stats.rangeRequests).toBeGreaterThan(0);
    expect(fraction).toBeLessThan(0.3);
  });

  it('answers bad requests with the right status and keeps serving', async () => {
    const c = await snapshotsClient(paths.socketPath);
    try {
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: unknown) => (e as { code: number }).code,
        );
      expect(await code(c.call('Mounts', { key: 'no/such/key' }))).toBe(status.NOT_FOUND);
      expect(await code(c.call('Stat', { key: 'no/such/key' }))).toBe(status.NOT_FOUND);
      expect(await code(c.call('Prepare', { key: 'bad-1', parent: 'sha256:nope' }))).toBe(status.NOT_FOUND);
      // containerd's GC removes backend snapshots it does not know (these): send the dependent calls together
      // so a GC pass cannot fall between them.
      const [made, dup, child] = await Promise.all([
        code(c.call('Prepare', { key: 'active-parent', parent: '' })),
        code(c.call('Prepare', { key: 'active-parent', parent: '' })),
        code(c.call('Prepare', { key: 'bad-2', parent: 'active-parent' })),
      ]);
      expect([made, dup, child]).toEqual(['ok', status.ALREADY_EXISTS, status.INVALID_ARGUMENT]);
      expect(
        await code(c.call('Prepare', { key: 'bad-3', parent: '', labels: { big: 'x'.repeat(5000) } })),
      ).toBe(status.INVALID_ARGUMENT);
      expect(await code(c.call('Commit', { key: 'no/such/key', name: 'x' }))).toBe(status.NOT_FOUND);
      expect(
        await code(c.call('Update', { info: { name: 'no/such/key' }, update_mask: { paths: ['labels.x'] } })),
      ).toBe(status.NOT_FOUND);
      expect(await code(c.list(['labels."unterminated']))).toBe(status.INVALID_ARGUMENT);
      // Still serving, and containerd still sees its snapshots.
      const batches = await c.list([]);
      expect(batches.flat().filter((i) => i['kind'] === 'COMMITTED').length).toBeGreaterThanOrEqual(4);
    } finally {
      c.close();
    }
    const snaps = await ctd.ctr(['snapshot', '--snapshotter', 'ferry', 'ls']);
    expect(snaps.stdout).toContain('Committed');
  });

  it('restarts between pull and run, with the registry down: remote snapshots are served from local state', async () => {
    expect(await daemon.stop('SIGTERM')).toBe(0);
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2); // the FUSE holder keeps them
    proxy.resetStats();
    proxy.fault = 'down';
    try {
      daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
    } finally {
      proxy.fault = 'none';
    }
    expect(daemon.stderr()).toContain('"remote snapshots restored"');
    expect(daemon.stderr().match(/"layer adopted from the holder"/g)).toHaveLength(2);
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
    expect(proxy.stats.requests).toBe(0); // indexes and labels are local: no registry round trip to restore
    await waitForReconnect();
    const ref = `${proxy.host}/app:lazy`;
    const { stdout } = await ctd.ctr(
      ['run', '--rm', '--snapshotter', 'ferry', ref, 'c-lazy2', '/bin/busybox', 'cat', '/hello.txt'],
      {
        timeoutMs: 60_000,
      },
    );
    expect(stdout).toBe('hello from a lazy layer\n');
  });

  it('SIGTERM shuts down cleanly: exit 0, own socket removed, layers and containerd socket left to the holder until it stops', async () => {
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
    const holderPid = daemon.holderPid;
    const code = await daemon.stop('SIGTERM');
    expect(code).toBe(0);
    expect(() => statSync(daemonSocketPath(paths.socketPath))).toThrow();
    expect(statSync(paths.socketPath).isSocket()).toBe(true); // the holder keeps it for the next daemon
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
    await stopHolder(holderPid); // as `systemctl stop ferry-fuse`: it unmounts what it holds
    expect(() => statSync(paths.socketPath)).toThrow();
    expect(await fuseMountsBelow(paths.root)).toEqual([]);
    expect(daemon.stderr()).toContain('"ferry daemon stopped"');
    // No errors logged over the whole run (a failed restore or unmount would be one).
    expect(
      daemon
        .stderr()
        .split('\n')
        .filter((l) => /"level":(50|60)/.test(l)),
    ).toEqual([]);
  });

  it('kill -9 of the daemon leaves a stale socket and live held mounts; the next start adopts them', async () => {
    daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths); // a new holder, fresh mounts
    const ids = await fuseMountsBelow(paths.root);
    expect(ids).toHaveLength(2);
    expect(await daemon.stop('SIGKILL')).toBeNull();
    daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
    expect(daemon.stderr()).toContain('"removed stale socket"');
    expect(daemon.stderr().match(/"layer adopted from the holder"/g)).toHaveLength(2);
    expect(await fuseMountsBelow(paths.root)).toEqual(ids);
  });

  it('kill -9 of the holder too leaves dead mounts; the next start detaches and re-mounts them', async () => {
    const holderPid = daemon.holderPid!;
    expect(await daemon.stop('SIGKILL')).toBeNull();
    process.kill(holderPid, 'SIGKILL');
    await processGone(holderPid);
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2); // dead (ENOTCONN), still in the mount table
    daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
    expect(daemon.holderPid).not.toBe(holderPid);
    expect(daemon.stderr().match(/"stale FUSE mount detached"/g)).toHaveLength(2);
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
  });

  it('the holder dying under a running daemon: the next container start re-mounts through a new holder', async () => {
    const holderPid = daemon.holderPid!;
    process.kill(holderPid, 'SIGKILL');
    await processGone(holderPid);
    await waitForReconnect();
    const ref = `${proxy.host}/app:lazy`;
    const { stdout } = await ctd.ctr(
      ['run', '--rm', '--snapshotter', 'ferry', ref, 'c-lazy3', '/bin/busybox', 'cat', '/hello.txt'],
      { timeoutMs: 60_000 },
    );
    expect(stdout).toBe('hello from a lazy layer\n');
    const log = daemon.stderr();
    expect(log).toContain('"FUSE holder went away"');
    const started = [...log.matchAll(/"pid":(\d+)[^\n]*"started a FUSE holder"/g)].map((m) => Number(m[1]));
    expect(started.at(-1)).not.toBe(holderPid);
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
    daemon.holderPid = started.at(-1); // for the clean-up below
  });

  it('image removal: containerd GC removes the remote snapshots through Ferry, which unmounts them', async () => {
    expect(await fuseMountsBelow(paths.root)).toHaveLength(2);
    await waitForReconnect(); // else the GC pass fails to walk Ferry and removes nothing
    await ctd.ctr(['image', 'rm', '--sync', `${proxy.host}/app:lazy`], { timeoutMs: 20_000 });
    const deadline = Date.now() + 20_000;
    while ((await fuseMountsBelow(paths.root)).length > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(await fuseMountsBelow(paths.root)).toEqual([]);
    const c = await snapshotsClient(paths.socketPath);
    try {
      expect((await c.list(['labels."containerd.io/snapshot/remote"'])).flat()).toEqual([]);
    } finally {
      c.close();
    }
    expect(await daemon.stop('SIGTERM')).toBe(0);
    await stopHolder(daemon.holderPid);
  });
});
