// A cold containerd node for the cold-start benchmark: a fresh containerd (and, for `stargz`, a fresh
// containerd-stargz-grpc built by scripts/build-stargz-grpc.sh) that pulls an image with real `ctr` /
// `ctr-remote` and mounts its top snapshot read-only at a target, as a container's rootfs would be. `ferry-ctd`:
// a fresh `ferry daemon` as containerd's snapshotter, the image pulled with `ctr-remote image rpull`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  startContainerd,
  startFerryDaemon,
  stopHolder,
  type RunningFerryDaemon,
  type TestContainerd,
} from '../../test/helpers/containerd.js';
import { ferryEnv } from '../../test/helpers/ferry-cli.js';

const run = promisify(execFile);

export type CtrMode = 'pull' | 'stargz' | 'ferry-ctd';

/** For `ferry-ctd`: which build of Ferry runs the daemon, and the registry host it may reach over plain HTTP. */
export interface FerryDaemonSpec {
  bin: string;
  host: string;
}

export interface CtrNode {
  readonly dir: string;
  /** `ctr image pull` (overlayfs, unpacks every layer) or `ctr-remote image rpull` (stargz, lazy). */
  pull(ref: string): Promise<void>;
  /** A read-only view of the image's top snapshot mounted at `target`. */
  mount(diffIds: readonly string[], target: string): Promise<void>;
  stop(): Promise<void>;
}

/** containerd's chain ID of a layer stack: sha256 over "<parent chain> <diff id>". */
export function chainId(diffIds: readonly string[]): string {
  let chain = diffIds[0]!;
  for (const d of diffIds.slice(1))
    chain = `sha256:${createHash('sha256').update(`${chain} ${d}`).digest('hex')}`;
  return chain;
}

async function umountUnder(dir: string): Promise<void> {
  await run('sh', [
    '-c',
    `grep -o " ${dir}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`,
  ]).catch(() => undefined);
}

export async function startCtrNode(
  mode: CtrMode,
  stargzBin?: string,
  ferrySpec?: FerryDaemonSpec,
): Promise<CtrNode> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-ctr-'));
  let socket = join(dir, 'stargz.sock');
  let stargz: ChildProcess | undefined;
  let daemon: RunningFerryDaemon | undefined;
  let containerd: TestContainerd | undefined;
  const snapshotter = mode === 'stargz' ? 'stargz' : mode === 'ferry-ctd' ? 'ferry' : 'overlayfs';
  const ferryDir =
    mode === 'ferry-ctd' ? ferryEnv('', `insecureHosts = ["${ferrySpec?.host ?? ''}"]`) : undefined;
  const mounted: string[] = [];
  let log = '';
  try {
    if (mode === 'stargz') {
      if (stargzBin === undefined) throw new Error('stargz mode needs containerd-stargz-grpc');
      const child = spawn(stargzBin, ['--address', socket, '--root', join(dir, 'stargz-root')], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      stargz = child;
      child.stderr.on('data', (b: Buffer) => (log = (log + b.toString()).slice(-20_000)));
      const deadline = Date.now() + 15_000;
      while (!log.includes('serving on')) {
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`containerd-stargz-grpc: ${log}`);
        await sleep(50);
      }
    }
    if (ferryDir !== undefined) {
      if (ferrySpec === undefined) throw new Error('ferry-ctd mode needs a ferry build');
      socket = join(ferryDir.dir, 'run', 'snapshotter.sock');
      const root = join(ferryDir.dir, 'state', 'snapshots');
      daemon = await startFerryDaemon(ferrySpec.bin, ferryDir.configPath, { socketPath: socket, root });
    }
    containerd = await startContainerd({
      snapshotterSocket: socket,
      snapshotterName: mode === 'ferry-ctd' ? 'ferry' : 'stargz',
    });
    if (mode === 'stargz') await containerd.waitForSnapshotter('stargz');
    if (mode === 'ferry-ctd') await containerd.waitForSnapshotter('ferry');
  } catch (e) {
    stargz?.kill('SIGKILL');
    await daemon?.stop().catch(() => undefined);
    await stopHolder(daemon?.holderPid).catch(() => undefined);
    if (ferryDir !== undefined) rmSync(ferryDir.dir, { recursive: true, force: true });
    await containerd?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const ctd = containerd;
  return {
    dir,
    async pull(ref) {
      if (mode === 'stargz')
        await ctd
          .ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'stargz', ref], {
            timeoutMs: 600_000,
          })
          .catch((e: unknown) => {
            throw new Error(`${String(e)}\ncontainerd-stargz-grpc log:\n${log}`);
          });
      else if (mode === 'ferry-ctd')
        await ctd
          .ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref], {
            timeoutMs: 600_000,
          })
          .catch((e: unknown) => {
            throw new Error(`${String(e)}\nferry daemon log:\n${daemon?.stderr().slice(-8000) ?? ''}`);
          });
      else await ctd.ctr(['image', 'pull', '--plain-http', ref], { timeoutMs: 600_000 });
    },
    async mount(diffIds, target) {
      // `ctr images mount` reads --snapshotter as a global flag that does not exist (containerd 1.6), so it would
      // always use overlayfs: make the view and mount it the way it would. One command: a view has no lease, and
      // containerd's GC may remove it at any moment after (its mounts name only the committed parents' dirs).
      const key = `view-${target}`;
      const { stdout } = await ctd.ctr([
        'snapshots',
        '--snapshotter',
        snapshotter,
        'view',
        '--mounts',
        key,
        chainId(diffIds),
      ]);
      // containerd's mount.Mount has no JSON tags: Type, Source, Options.
      const mounts = JSON.parse(stdout) as Array<{ Type: string; Source: string; Options?: string[] | null }>;
      if (mounts.length !== 1) throw new Error(`expected one mount, got ${stdout}`);
      const m = mounts[0]!;
      mkdirSync(target, { recursive: true });
      const opts = m.Options ?? [];
      await run('mount', [
        '-t',
        m.Type,
        ...(opts.length === 0 ? [] : ['-o', opts.join(',')]),
        m.Source,
        target,
      ]);
      mounted.push(target);
    },
    async stop() {
      for (const t of mounted.reverse()) await run('umount', ['-l', t]).catch(() => undefined);
      await ctd.stop();
      if (stargz !== undefined && stargz.exitCode === null) {
        const gone = new Promise<void>((r) => stargz.once('exit', () => r()));
        stargz.kill('SIGTERM');
        await Promise.race([gone, sleep(5000)]);
        if (stargz.exitCode === null) stargz.kill('SIGKILL');
      }
      if (daemon !== undefined) {
        await daemon.stop().catch(() => undefined);
        await stopHolder(daemon.holderPid).catch(() => undefined);
      }
      await umountUnder(dir);
      rmSync(dir, { recursive: true, force: true });
      if (ferryDir !== undefined) {
        await umountUnder(ferryDir.dir);
        rmSync(ferryDir.dir, { recursive: true, force: true });
      }
    },
  };
}
