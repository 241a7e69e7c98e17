// Issue 17: a containerd started before Ferry works as soon as Ferry is up. containerd retries a missing snapshots
// socket on grpc-go's backoff and, between attempts, fails every call at once, also after the socket appeared: the
// daemon must not report ready (/readyz) while such a pause can still be running.
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  startContainerd,
  startFerryDaemon,
  type RunningFerryDaemon,
  type TestContainerd,
} from '../helpers/containerd.js';
import { FERRY_BIN, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';
import { until } from '../helpers/wait.js';
import { freePort } from '../helpers/registry.js';

let ctd: TestContainerd | undefined;
let daemon: RunningFerryDaemon | undefined;

afterAll(async () => {
  await daemon?.stop();
  await ctd?.stop();
});

/** A call containerd passes to Ferry (`ctr snapshots ls` does not: containerd answers it from its metadata). */
async function prepare(
  c: TestContainerd,
  key: string,
  timeoutMs: number,
): Promise<{ ok: boolean; ms: number }> {
  const t0 = performance.now();
  const ok = await c.ctr(['snapshots', '--snapshotter', 'ferry', 'prepare', key], { timeoutMs }).then(
    () => true,
    () => false,
  );
  return { ok, ms: performance.now() - t0 };
}

it('reports ready only when a containerd started before the socket can use it', async () => {
  requireBuild();
  const metrics = `127.0.0.1:${await freePort()}`;
  // No holder (lazy = false): the daemon binds containerd's path itself, the moment it starts serving.
  const env = ferryEnv(`[snapshotter]\nlazy = false\n\n[metrics]\naddress = "${metrics}"\n`);
  const paths = {
    socketPath: join(env.dir, 'run', 'snapshotter.sock'),
    root: join(env.dir, 'state', 'snapshots'),
  };
  ctd = await startContainerd({ snapshotterSocket: paths.socketPath });
  // Let containerd's backoff grow (1 s, 1.6 s, 2.56 s, 3 s), then catch the start of one of its pauses: a call
  // that fails at once instead of waiting out a dial attempt.
  await new Promise((r) => setTimeout(r, 8_000));
  let n = 0;
  await until(
    'a call failing at once (containerd between dial attempts)',
    async () => {
      const r = await prepare(ctd!, `probe-${n++}`, 1_000);
      return !r.ok && r.ms < 400;
    },
    30_000,
    0,
  );
  daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
  await until(
    '/readyz 200',
    async () => (await fetch(`http://${metrics}/readyz`).catch(() => undefined))?.status === 200,
    20_000,
    20,
  );
  // Ready: the very next call reaches Ferry.
  const first = await prepare(ctd, 'after-ready', 15_000);
  expect(first.ok, daemon.stderr().slice(-3000)).toBe(true);
  expect(daemon.stderr()).toContain('ready once containerd can have redialled');
}, 90_000);
