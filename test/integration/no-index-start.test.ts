// The first start ever, with no index anywhere (issue 15 item 5 under issue 14's rule): the node streams every
// layer of the image at once — on `ferry mount` and on containerd's path, where containerd prepares the layers
// one after another — and serves nothing of a layer before its digest and diffID are checked: a layer whose
// bytes go wrong only near the end fails the start with a clear error, and none of its files is ever visible.
import { readFile, stat } from 'node:fs/promises';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryClient } from '../../src/registry/client.js';
import {
  CTR_REMOTE_BINARY,
  BUSYBOX,
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  startContainerd,
  startFerryDaemon,
  stopHolder,
  type BusyboxApp,
  type RunningFerryDaemon,
  type TestContainerd,
} from '../helpers/containerd.js';
import { FaultProxy, type LoggedRequest } from '../helpers/fault-proxy.js';
import { FERRY_BIN, ferryEnv, requireBuild, startMount, ferry } from '../helpers/ferry-cli.js';
import { startRegistry, testRegistryClient, type TestRegistry } from '../helpers/registry.js';

const BIG_BYTES = 6 * 1024 * 1024;
/** Every whole-blob answer waits this long: streams that run one after another cannot overlap by chance. */
const BLOB_DELAY_MS = 400;

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;

beforeAll(async () => {
  requireBinaries([CTR_REMOTE_BINARY, BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await client?.close();
  await registry?.stop();
});

/** The whole-blob GETs of `app`'s layers, in the order they arrived (each must have ended). */
function layerGets(app: BusyboxApp): LoggedRequest[] {
  const digests = app.pushed.manifest.layers.map((l) => l.digest);
  const gets = proxy.requestLog.filter(
    (r) => r.method === 'GET' && r.kind === 'blob' && digests.some((d) => r.url.includes(d)),
  );
  for (const d of digests)
    expect(
      gets.filter((r) => r.url.includes(d)),
      d,
    ).toHaveLength(1);
  return gets;
}

/** Every layer's stream started before the first of them ended. */
function expectConcurrent(gets: readonly LoggedRequest[]): void {
  const lastStart = Math.max(...gets.map((r) => r.startMs));
  const firstEnd = Math.min(...gets.map((r) => r.endMs ?? Infinity));
  expect(firstEnd).toBeLessThan(Infinity);
  expect(lastStart, JSON.stringify(gets)).toBeLessThan(firstEnd);
}

describe('ferry mount with no index anywhere', () => {
  it('streams all layers at once, verifies them, and serves the image', async () => {
    const app = await pushBusyboxApp(client, `${registry.host}/noindex/cli:1`, 'hello, built\n', BIG_BYTES);
    const env = ferryEnv('[prefetch]\nenabled = false\n');
    proxy.resetStats();
    proxy.inject('blob', { type: 'delay', ms: BLOB_DELAY_MS });
    const target = join(env.dir, 'rootfs');
    try {
      const m = await startMount(`${proxy.host}/noindex/cli:1`, target, env);
      try {
        const layers = m.mounted['layers'] as Array<{ indexSource: string; trust: string }>;
        expect(layers.map((l) => l.indexSource)).toEqual(['built', 'built']);
        expectConcurrent(layerGets(app));
        expect(await readFile(join(target, 'hello.txt'), 'utf8')).toBe('hello, built\n');
        expect(await readFile(join(target, 'bin/busybox'))).toEqual(readFileSync(BUSYBOX));
        expect((await stat(join(target, 'data/big.bin'))).size).toBe(BIG_BYTES);
        // The build warmed the cache: the reads crossed no link.
        const blobGets = proxy.requestLog.filter((r) => r.kind === 'blob' || r.kind === 'range').length;
        await readFile(join(target, 'data/big.bin'));
        expect(proxy.requestLog.filter((r) => r.kind === 'blob' || r.kind === 'range')).toHaveLength(
          blobGets,
        );
      } finally {
        await ferry(['umount', target], env);
        await m.exited;
      }
    } finally {
      proxy.clear();
      rmSync(env.dir, { recursive: true, force: true });
    }
  });

  it('a layer whose bytes go wrong near its end fails the mount: nothing of the image is served', async () => {
    const app = await pushBusyboxApp(client, `${registry.host}/noindex/bad:1`, 'never seen\n', BIG_BYTES);
    const top = app.pushed.manifest.layers[1]!;
    const env = ferryEnv('[prefetch]\nenabled = false\n');
    proxy.inject('blob', { type: 'flipTail', fromEnd: 100, digest: top.digest });
    const target = join(env.dir, 'rootfs');
    try {
      await expect(startMount(`${proxy.host}/noindex/bad:1`, target, env, 60_000)).rejects.toThrow(
        new RegExp(`INTEGRITY: blob ${top.digest} .* content hashes to`),
      );
      const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
      expect(mounts).not.toContain(env.dir);
    } finally {
      proxy.clear();
      rmSync(env.dir, { recursive: true, force: true });
    }
  });
});

describe('containerd with no index anywhere', () => {
  let daemon: RunningFerryDaemon | undefined;
  let ctd: TestContainerd | undefined;
  let root = '';

  beforeAll(async () => {
    const env = ferryEnv('[snapshotter]\nremoteTimeoutMs = 60000\n\n[prefetch]\nenabled = false\n');
    const paths = {
      socketPath: join(env.dir, 'run', 'snapshotter.sock'),
      root: join(env.dir, 'state', 'snapshots'),
    };
    root = paths.root;
    daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
    ctd = await startContainerd({ snapshotterSocket: paths.socketPath });
  }, 120_000);

  afterAll(async () => {
    await ctd?.stop();
    await daemon?.stop().catch(() => undefined);
    await stopHolder(daemon?.holderPid).catch(() => undefined);
  });

  it('the first Prepare starts every layer: they stream at once although containerd prepares them in turn', async () => {
    const app = await pushBusyboxApp(
      client,
      `${registry.host}/noindex/ctd:1`,
      'hello, containerd\n',
      BIG_BYTES,
    );
    const ref = `${proxy.host}/noindex/ctd:1`;
    proxy.resetStats();
    proxy.inject('blob', { type: 'delay', ms: BLOB_DELAY_MS });
    try {
      await ctd!.ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref], {
        timeoutMs: 90_000,
      });
    } finally {
      proxy.clear();
    }
    expect(await fuseMountsBelow(root), daemon!.stderr().slice(-8000)).toHaveLength(2);
    expectConcurrent(layerGets(app));
    const { stdout } = await ctd!.ctr([
      'run',
      '--rm',
      '--snapshotter',
      'ferry',
      ref,
      'c-noindex',
      '/bin/busybox',
      'cat',
      '/hello.txt',
    ]);
    expect(stdout).toBe('hello, containerd\n');
  });
});
