// Issue 8's acceptance test: a container started by real containerd keeps reading files from Ferry's lazily
// mounted layers before, during and after `ferry daemon` restarts — a clean one (SIGTERM, as `systemctl
// restart`) and a crash (kill -9, as systemd's Restart=on-failure sees it) — with no remount: the FUSE holder
// keeps each /dev/fuse descriptor and replays what the dead daemon left unanswered to its successor.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import {
  BUSYBOX,
  CTR_BINARY,
  CTR_REMOTE_BINARY,
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

const run = promisify(execFile);
const FILES = 360;
const FILE_BYTES = 48 * 1024;
/** Keeps the daemon down this long at each restart: reads issued meanwhile must wait, not fail. */
const DOWN_MS = 1500;

let registry: TestRegistry;
let client: RegistryClient;
let env: FerryEnv;
let paths: { socketPath: string; root: string };
let daemon: RunningFerryDaemon;
let ctd: TestContainerd;
let holderPid: number | undefined;
const expected = new Map<string, string>();
const ref = () => `${registry.host}/restart:lazy`;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  requireBinaries([CTR_REMOTE_BINARY, BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  client = testRegistryClient();
  const files = Array.from({ length: FILES }, (_, i) => ({
    name: `data/f${i}`,
    data: randomBytes(FILE_BYTES),
  }));
  for (const f of files) expected.set(`/${f.name}`, sha(f.data));
  await pushBusyboxApp(client, ref(), 'hello across restarts\n', 1 << 20, files);
  await ferry(['index', ref(), '--push'], ferryEnv());
  // No mount-time prefetch and no read-ahead: every file the container reads is a FUSE request answered by
  // whichever daemon runs at that moment.
  env = ferryEnv(
    '[snapshotter]\nremoteTimeoutMs = 20000\n\n[prefetch]\ndefaultBytesPerLayer = 0\n\n' +
      '[readAhead]\nenabled = false\n\n[fuse]\nholderOrphanTimeoutMs = 120000\n',
  );
  paths = { socketPath: join(env.dir, 'run', 'snapshotter.sock'), root: join(env.dir, 'state', 'snapshots') };
  daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
  holderPid = daemon.holderPid;
  ctd = await startContainerd({ snapshotterSocket: paths.socketPath });
  await ctd.ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref()], {
    timeoutMs: 90_000,
  });
}, 170_000);

afterAll(async () => {
  await ctd?.stop();
  await daemon?.stop().catch(() => undefined);
  await stopHolder(holderPid).catch(() => undefined);
  await client?.close();
  await registry?.stop();
});

/** Mount ids of Ferry's layer mounts: equal before and after means nothing was remounted. */
function mountIds(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(` ${paths.root}/`) && l.includes(' - fuse'))
    .map((l) => `${l.split(' ')[0]} ${l.split(' ')[4]}`)
    .sort();
}

async function restart(signal: 'SIGTERM' | 'SIGKILL', duringDown: () => Promise<void>): Promise<void> {
  const code = await daemon.stop(signal);
  expect(code).toBe(signal === 'SIGTERM' ? 0 : null);
  await duringDown();
  await new Promise((r) => setTimeout(r, DOWN_MS));
  daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
  expect(daemon.holderPid).toBe(holderPid); // the same holder: the mounts never went away
}

describe('daemon restart under a running container', () => {
  it('a container reads every file right before, during and after a SIGTERM restart and a kill -9 restart', async () => {
    expect(holderPid).toBeTypeOf('number');
    const layerMounts = await fuseMountsBelow(paths.root);
    expect(layerMounts).toHaveLength(2);
    const dataLayer = layerMounts.find((mp) => existsSync(join(mp, 'hello.txt')))!;
    const idsBefore = mountIds();

    // The "container": reads each file once (so each read is a FUSE request, not page cache), 40 ms apart.
    const script =
      `i=0; while [ $i -lt ${FILES} ]; do sha256sum /data/f$i || echo "FAIL $i"; ` +
      'i=$((i+1)); usleep 40000; done; echo DONE';
    const ctr = spawn(
      CTR_BINARY,
      [
        '--address',
        ctd.address,
        '-n',
        'test',
        'run',
        '--rm',
        '--snapshotter',
        'ferry',
        ref(),
        `c-restart-${process.pid}`,
      ].concat(['/bin/busybox', 'sh', '-c', script]),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let ctrErr = '';
    ctr.stderr.on('data', (b: Buffer) => (ctrErr += b.toString()));
    const lines: Array<{ at: number; line: string }> = [];
    const waiters: Array<{ n: number; resolve: () => void }> = [];
    createInterface({ input: ctr.stdout }).on('line', (line) => {
      lines.push({ at: performance.now(), line });
      for (const w of waiters.filter((x) => lines.length >= x.n)) w.resolve();
    });
    const exited = new Promise<number | null>((r) => ctr.on('exit', (c) => r(c)));
    const linesAtLeast = (n: number) =>
      Promise.race([
        new Promise<void>((resolve) => (lines.length >= n ? resolve() : waiters.push({ n, resolve }))),
        exited.then((c) => {
          throw new Error(`container exited (${c}) after ${lines.length} lines: ${ctrErr}`);
        }),
      ]);

    await linesAtLeast(60);
    // A host-side read of a file nobody has read yet, issued while the daemon is down: it must wait for the
    // successor and then return the right bytes.
    let hostRead: Promise<{ stdout: string }> | undefined;
    const downWindows: Array<[number, number]> = [];
    let t0 = performance.now();
    await restart('SIGTERM', () => {
      hostRead = run('sha256sum', [join(dataLayer, 'data', `f${FILES - 1}`)], { timeout: 60_000 });
      return Promise.resolve();
    });
    downWindows.push([t0, performance.now()]);
    expect((await hostRead!).stdout.split(' ')[0]).toBe(expected.get(`/data/f${FILES - 1}`));

    await linesAtLeast(lines.length + 60);
    t0 = performance.now();
    await restart('SIGKILL', () => Promise.resolve());
    downWindows.push([t0, performance.now()]);

    expect(await exited).toBe(0);
    expect(ctrErr).toBe('');
    const done = lines.map((l) => l.line);
    expect(done.at(-1)).toBe('DONE');
    const sums = done.slice(0, -1);
    expect(sums.filter((l) => l.startsWith('FAIL'))).toEqual([]);
    expect(sums).toHaveLength(FILES);
    for (const l of sums) {
      const [hash, path] = l.split(/\s+/);
      expect(hash, path).toBe(expected.get(path!));
    }
    // "During": reads that were waiting while the daemon was down completed right after it came back.
    const gaps = lines.slice(1).map((l, i) => ({ at: l.at, gap: l.at - lines[i]!.at }));
    for (const [from, to] of downWindows) {
      // The daemon was down at least from `from` to `from + DOWN_MS`: a read pending across that stretch
      // shows as one line arriving after it, its predecessor before it.
      const spanning = gaps.find((g) => g.at - g.gap <= from + 50 && g.at >= from + DOWN_MS);
      console.log(
        `restart: daemon away ${Math.round(to - from)} ms; the container's read pending across it took ${Math.round(spanning?.gap ?? -1)} ms`,
      );
      expect(spanning, 'a read spanned the restart').toBeDefined();
    }
    expect(mountIds()).toEqual(idsBefore); // no remount
    expect(daemon.stderr()).toContain('"layer adopted from the holder"');
  }, 240_000);

  it('after the restarts, new containers start and removal unmounts through the holder', async () => {
    await ctd.waitForSnapshotter();
    const { stdout } = await ctd.ctr(
      [
        'run',
        '--rm',
        '--snapshotter',
        'ferry',
        ref(),
        `c-after-${process.pid}`,
        '/bin/busybox',
        'cat',
        '/hello.txt',
      ],
      { timeoutMs: 60_000 },
    );
    expect(stdout).toBe('hello across restarts\n');
    await ctd.ctr(['image', 'rm', '--sync', ref()], { timeoutMs: 20_000 });
    const deadline = Date.now() + 20_000;
    while ((await fuseMountsBelow(paths.root)).length > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(await fuseMountsBelow(paths.root)).toEqual([]);
  }, 120_000);
});
