// Starts Debian's containerd as a child process with its own root, state, socket and config, with Ferry as the
// `ferry` proxy snapshotter, and runs `ctr`/`ctr-remote` against it. Missing binaries fail loudly.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import tarStream from 'tar-stream';
import { MediaType } from '../../src/image/manifest.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { gzipLayer } from './corpus.js';
import { pushImage, type PushedImage, type TestLayer } from './push-image.js';

const run = promisify(execFile);

export const CONTAINERD_BINARY = '/usr/bin/containerd';
export const CTR_BINARY = '/usr/bin/ctr';
export const CTR_REMOTE_BINARY = '/usr/bin/ctr-remote';
export const RUNC_BINARY = '/usr/sbin/runc';
/** busybox-static: one binary that lets a test container run commands. */
export const BUSYBOX = '/usr/bin/busybox';

export function requireBinaries(paths: readonly string[]): void {
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(', ')}: containerd integration tests need Debian's containerd, runc and ` +
        'stargz-snapshotter (scripts/install-deps.sh). This is a prerequisite, not an optional test.',
    );
  }
}

export interface TestContainerd {
  dir: string;
  /** containerd's own gRPC socket (for ctr --address). */
  address: string;
  /** Runs `ctr --address <sock> -n <namespace> ...args`. */
  ctr(
    args: string[],
    opts?: { timeoutMs?: number; namespace?: string },
  ): Promise<{ stdout: string; stderr: string }>;
  /** Runs `ctr-remote --address <sock> -n <namespace> ...args`. */
  ctrRemote(
    args: string[],
    opts?: { timeoutMs?: number; namespace?: string },
  ): Promise<{ stdout: string; stderr: string }>;
  log(): string;
  /** containerd redials a proxy snapshotter with backoff (capped at 3 s) after it restarts: waits until through. */
  waitForSnapshotter(name?: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The CRI plugin's settings when a test enables it (otherwise it is disabled). */
export interface CriOptions {
  /** The pod sandbox ("pause") image: the test pushes one, there is no network to pull registry.k8s.io's. */
  sandboxImage: string;
  /** Registries (`127.0.0.1:PORT`) CRI pulls from over plain HTTP (a hosts.toml each under config_path). */
  plainHttpRegistries: readonly string[];
}

/**
 * The CRI plugin's config (version 2 layout, containerd 1.6): Ferry as its snapshotter with the snapshot
 * annotations (the `cri.*` labels) on, no CNI config (host-network pods only), hosts.toml per plain-HTTP registry.
 */
function criConfig(dir: string, snapshotter: string, cri: CriOptions): string[] {
  mkdirSync(join(dir, 'cni'));
  for (const host of cri.plainHttpRegistries) {
    mkdirSync(join(dir, 'certs.d', host), { recursive: true });
    writeFileSync(
      join(dir, 'certs.d', host, 'hosts.toml'),
      `server = "http://${host}"\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
  }
  const p = '[plugins."io.containerd.grpc.v1.cri"';
  return [
    `${p}]`,
    `  sandbox_image = "${cri.sandboxImage}"`,
    // CRI lowers the pause container's OOM score to -998, which needs CAP_SYS_RESOURCE; a CI sandbox may lack
    // it (runc then fails with "can't get final child's PID from pipe"). No lower than containerd's own score.
    '  restrict_oom_score_adj = true',
    `${p}.containerd]`,
    `  snapshotter = "${snapshotter}"`,
    '  disable_snapshot_annotations = false',
    // runc's state under this containerd's dir, not /run/containerd/runc/k8s.io.
    `${p}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `${p}.containerd.runtimes.runc.options]`,
    `  Root = "${dir}/runc"`,
    `${p}.cni]`,
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = "${dir}/cni"`,
    `${p}.registry]`,
    `  config_path = "${dir}/certs.d"`,
  ];
}

export async function startContainerd(opts: {
  snapshotterSocket: string;
  snapshotterName?: string;
  cri?: CriOptions;
}): Promise<TestContainerd> {
  requireBinaries([CONTAINERD_BINARY, CTR_BINARY, RUNC_BINARY]);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-ctd-'));
  const address = join(dir, 'containerd.sock');
  const name = opts.snapshotterName ?? 'ferry';
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      ...(opts.cri === undefined ? ['disabled_plugins = ["io.containerd.grpc.v1.cri"]'] : []),
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[debug]',
      `  address = ""`,
      '[metrics]',
      `  address = ""`,
      '[proxy_plugins]',
      `  [proxy_plugins.${name}]`,
      '    type = "snapshot"',
      `    address = "${opts.snapshotterSocket}"`,
      ...(opts.cri === undefined ? [] : criConfig(dir, name, opts.cri)),
      '',
    ].join('\n'),
  );
  const child = spawn(CONTAINERD_BINARY, ['--config', config, '--log-level', 'info'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (c: Buffer) => {
    log = (log + c.toString()).slice(-200_000);
  });
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  const ctrWith =
    (bin: string) =>
    async (args: string[], o: { timeoutMs?: number; namespace?: string } = {}) => {
      try {
        return await run(bin, ['--address', address, '-n', o.namespace ?? 'test', ...args], {
          timeout: o.timeoutMs ?? 60_000,
          maxBuffer: 64 << 20,
        });
      } catch (e) {
        const x = e as { stderr?: string; stdout?: string; message: string };
        throw new Error(
          `${bin} ${args.join(' ')} failed: ${x.message}\nstdout: ${x.stdout ?? ''}\nstderr: ${x.stderr ?? ''}`,
        );
      }
    };
  const ctr = ctrWith(CTR_BINARY);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`containerd exited early (${exited}): ${log}`);
    try {
      await run(CTR_BINARY, ['--address', address, 'version'], { timeout: 5_000 });
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`containerd did not answer on ${address} within 20 s: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    dir,
    address,
    ctr,
    ctrRemote: ctrWith(CTR_REMOTE_BINARY),
    log: () => log,
    async waitForSnapshotter(snapshotter = name, timeoutMs = 30_000) {
      const started = Date.now();
      for (;;) {
        try {
          await ctr(['snapshot', '--snapshotter', snapshotter, 'ls'], { timeoutMs: 10_000 });
          return;
        } catch (e) {
          if (Date.now() - started > timeoutMs) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
    async stop() {
      if (exited === undefined) {
        const gone = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
        if (exited === undefined) child.kill('SIGKILL');
      }
      await killShims(address);
      // Leftover shim mounts under the state dir would make rm fail: detach them first.
      await run('sh', [
        '-c',
        `grep -o " ${dir}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`,
      ]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Shims outlive containerd by design: a test that failed before removing its containers would leave this
 * containerd's shims (`-address <ours>`) and their containers running. SIGKILL each with its children.
 */
async function killShims(address: string): Promise<void> {
  const { readdir, readFile } = await import('node:fs/promises');
  const cmdline = (pid: string) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const args = (await cmdline(pid)).split('\0');
    if (
      !(args[0] ?? '').endsWith('containerd-shim-runc-v2') ||
      args[args.indexOf('-address') + 1] !== address
    )
      continue;
    const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
    for (const p of [...children.split(' ').filter(Boolean), pid]) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export interface RunningFerryDaemon {
  socketPath: string;
  root: string;
  pid: number;
  /** The FUSE holder serving this daemon's layers (from its ready line), if any. */
  holderPid: number | undefined;
  stderr(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Starts `ferry daemon` from the built dist (bin/ferry.js) and waits for its "ferry daemon ready" log line. */
export async function startFerryDaemon(
  ferryBin: string,
  configPath: string,
  paths: { socketPath: string; root: string },
  timeoutMs = 30_000,
  extraArgs: readonly string[] = [],
  /** Sees the daemon's stderr so far whenever more arrives, from the spawn on (before it is ready). */
  onStderr?: (stderr: string) => void,
): Promise<RunningFerryDaemon> {
  const child = spawn(process.execPath, [ferryBin, 'daemon', '--config', configPath, ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let onData: (() => void) | undefined;
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-500_000);
    onData?.();
    onStderr?.(stderr);
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // a daemon that never got ready must not outlive the test
      reject(new Error(`ferry daemon not ready in ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    onData = () => {
      if (stderr.includes('"ferry daemon ready"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ferry daemon exited (${code}) before it was ready: ${stderr}`));
    });
  });
  const readyLine = stderr.split('\n').find((l) => l.includes('"ferry daemon ready"'));
  const holderPid = /"holderPid":(\d+)/.exec(readyLine ?? '')?.[1];
  if (holderPid !== undefined) holdersSeen.add(Number(holderPid));
  return {
    ...paths,
    pid: child.pid!,
    holderPid: holderPid === undefined ? undefined : Number(holderPid),
    stderr: () => stderr,
    exited,
    async stop(signal = 'SIGTERM', stopTimeoutMs = 30_000) {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const code = await Promise.race([
        exited,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), stopTimeoutMs)),
      ]);
      if (code === 'timeout') {
        child.kill('SIGKILL');
        throw new Error(
          `ferry daemon did not stop within ${stopTimeoutMs} ms after ${signal}: ${stderr.slice(-4000)}`,
        );
      }
      return code;
    },
  };
}

/** The daemon's JSON log lines so far (lines that are not JSON skipped), those at or after `sinceMs` only. */
export function daemonLogRecords(d: { stderr(): string }, sinceMs = 0): Array<Record<string, unknown>> {
  return d
    .stderr()
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    })
    .filter((r) => sinceMs === 0 || (typeof r['time'] === 'number' && r['time'] >= sinceMs));
}

/** FUSE mounts (fstype fuse.*) at or below `dir`, from /proc/self/mountinfo. */
export async function fuseMountsBelow(dir: string): Promise<string[]> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => {
      const dash = f.indexOf('-');
      return dash > 0 && (f[dash + 1] ?? '').startsWith('fuse');
    })
    .map((f) => (f[4] ?? '').replace(/\\040/g, ' '))
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`));
}

// Also used by bench/trace-start.ts for its busybox layer.
export async function tar(
  entries: Array<{ name: string; data?: Buffer; mode?: number; type?: 'directory' }>,
): Promise<Buffer> {
  const pack = tarStream.pack();
  const parts: Buffer[] = [];
  pack.on('data', (b: unknown) => parts.push(b as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory', mode: 0o755 });
    else pack.entry({ name: e.name, mode: e.mode ?? 0o644 }, e.data ?? Buffer.alloc(0));
  }
  pack.finalize();
  await done;
  return Buffer.concat(parts);
}

export interface BusyboxApp {
  layers: TestLayer[];
  pushed: PushedImage;
  /** Compressed bytes of all layers. */
  layerBytes: number;
}

/**
 * Two gzip layers: /bin/busybox, then /hello.txt (the greeting) beside `bigBytes` of random data nobody reads
 * and any `extra` files (names relative to the root; their directories are not created for them).
 */
export async function pushBusyboxApp(
  client: RegistryClient,
  ref: string,
  greeting: string,
  bigBytes: number,
  extra: ReadonlyArray<{ name: string; data: Buffer }> = [],
): Promise<BusyboxApp> {
  const base = gzipLayer(
    await tar([
      { name: 'bin', type: 'directory' },
      { name: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
      // Names the image: two apps pushed within the same second (tar mtimes) would otherwise share this layer,
      // and containerd would reuse the first one's snapshot instead of asking Ferry to mount it lazily.
      { name: 'etc', type: 'directory' },
      { name: 'etc/ferry-test-image', data: Buffer.from(`${ref}\n`) },
    ]),
  );
  const top = gzipLayer(
    await tar([
      { name: 'hello.txt', data: Buffer.from(greeting) },
      { name: 'data', type: 'directory' },
      { name: 'data/big.bin', data: randomBytes(bigBytes) },
      ...extra,
    ]),
  );
  const layers = [
    { data: base, mediaType: MediaType.ociLayerGzip },
    { data: top, mediaType: MediaType.ociLayerGzip },
  ];
  const pushed = await pushImage(client, ref, { layers });
  return { layers, pushed, layerBytes: base.length + top.length };
}

const holdersSeen = new Set<number>();

/** Stops every FUSE holder a daemon started by this process reported (for afterAll). */
export async function stopHolders(): Promise<void> {
  for (const pid of holdersSeen) await stopHolder(pid).catch(() => undefined);
  holdersSeen.clear();
}

/** Stops a daemon's FUSE holder (SIGTERM: it unmounts every layer it holds) and waits until it is gone. */
export async function stopHolder(pid: number | undefined, timeoutMs = 10_000): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`FUSE holder ${pid} did not exit within ${timeoutMs} ms of SIGTERM`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A pod sandbox ("pause") image for CRI: busybox-static whose entrypoint sleeps until CRI kills it (StopPodSandbox
 * sends SIGKILL). Tests have no network to pull registry.k8s.io/pause.
 */
export async function pushPauseImage(client: RegistryClient, ref: string): Promise<PushedImage> {
  const layer = gzipLayer(
    await tar([
      { name: 'bin', type: 'directory' },
      { name: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
    ]),
  );
  return pushImage(client, ref, {
    layers: [{ data: layer, mediaType: MediaType.ociLayerGzip }],
    config: { config: { Entrypoint: ['/bin/busybox', 'sleep', '3600'] } },
  });
}
