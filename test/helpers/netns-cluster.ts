// A test cluster in network namespaces: a hub namespace holding a bridge, one namespace per Ferry node and one
// for docker-registry, each joined to the bridge by a veth pair created inside namespaces we made (the host's
// own interfaces are never touched). Registry egress is read from its veth counters. Needs root and `ip`.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { MediaType } from '../../src/image/manifest.js';
import { registryConfigYaml, testRegistryClient } from './registry.js';
import { gzipLayer, pseudoRandom } from './corpus.js';
import { FERRY_BIN, ferry, ferryEnv, type FerryEnv, type MountEvent } from './ferry-cli.js';
import { pushImage } from './push-image.js';

const run = promisify(execFile);
export const IP = '/usr/sbin/ip';

export interface NetnsCluster {
  readonly prefix: string;
  /** `10.234.S` — the cluster's /24. */
  readonly subnet: string;
  readonly registryNs: string;
  readonly registryAddr: string;
  nodeNs(i: number): string;
  nodeAddr(i: number): string;
  /** Bytes the registry namespace has sent so far (its veth's tx counter). */
  registryTxBytes(): Promise<number>;
  /** Cuts (or restores) node i's link to the bridge: a partition without a RST. */
  setNodeLink(i: number, up: boolean): Promise<void>;
  /** Shapes the registry's egress to `mbit` Mbit/s (a WAN-ish registry link); 0 removes the shaping. */
  shapeRegistry(mbit: number): Promise<void>;
  /** Runs `argv` in node i's network namespace (the mount namespace stays the host's). */
  spawnIn(ns: string, argv: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  destroy(): Promise<void>;
}

function ip(args: string[]): void {
  execFileSync(IP, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Fails loudly when the prerequisites are missing: this suite must not skip. */
export function requireNetns(): void {
  if (!existsSync(IP))
    throw new Error(`${IP} is missing: the p2p integration tests need iproute2 (apt-get install iproute2)`);
  if (process.getuid?.() !== 0) throw new Error('the p2p integration tests need root (network namespaces)');
  if (!existsSync('/usr/bin/nsenter')) throw new Error('/usr/bin/nsenter is missing (util-linux)');
}

export function createNetnsCluster(nodes: number): NetnsCluster {
  requireNetns();
  const tag = (process.pid % 9000) + 1000;
  const prefix = `fy${tag}`;
  const subnet = `10.234.${(process.pid % 200) + 20}`;
  const hub = `${prefix}-hub`;
  const registryNs = `${prefix}-reg`;
  const created: string[] = [];
  const nsName = (i: number) => `${prefix}-n${i}`;
  const addNs = (ns: string) => {
    ip(['netns', 'add', ns]);
    created.push(ns);
    ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  };
  const attach = (ns: string, hubIf: string, addr: string) => {
    addNs(ns);
    ip(['-n', hub, 'link', 'add', hubIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    ip(['-n', hub, 'link', 'set', hubIf, 'master', 'br0', 'up']);
    ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
  };
  const destroy = async () => {
    for (const ns of created.reverse()) await run(IP, ['netns', 'del', ns]).catch(() => undefined);
    created.length = 0;
  };
  try {
    addNs(hub);
    ip(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', hub, 'link', 'set', 'br0', 'up']);
    attach(registryNs, 'vreg', `${subnet}.2`);
    for (let i = 0; i < nodes; i++) attach(nsName(i), `vn${i}`, `${subnet}.${10 + i}`);
  } catch (e) {
    void destroy();
    throw new Error(
      `cannot create network namespaces (${prefix}-*): ${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}`,
      { cause: e },
    );
  }
  return {
    prefix,
    subnet,
    registryNs,
    registryAddr: `${subnet}.2:5000`,
    nodeNs: nsName,
    nodeAddr: (i) => `${subnet}.${10 + i}`,
    async registryTxBytes() {
      const { stdout } = await run(IP, ['-n', registryNs, '-j', '-s', 'link', 'show', 'eth0']);
      const [link] = JSON.parse(stdout) as Array<{ stats64: { tx: { bytes: number } } }>;
      return link!.stats64.tx.bytes;
    },
    async setNodeLink(i, up) {
      await run(IP, ['-n', hub, 'link', 'set', `vn${i}`, up ? 'up' : 'down']);
    },
    async shapeRegistry(mbit) {
      await run('tc', ['-n', registryNs, 'qdisc', 'del', 'dev', 'eth0', 'root']).catch(() => undefined);
      if (mbit > 0)
        await run('tc', [
          '-n',
          registryNs,
          'qdisc',
          'add',
          'dev',
          'eth0',
          'root',
          'tbf',
          'rate',
          `${mbit}mbit`,
          'burst',
          '64kb',
          'latency',
          '400ms',
        ]);
    },
    spawnIn(ns, argv, env) {
      return spawn('/usr/bin/nsenter', [`--net=/run/netns/${ns}`, '--', ...argv], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
    },
    destroy,
  };
}

/** Starts docker-registry serving `dataDir` on `addr`, inside `ns` (or in the host namespace when undefined). */
export async function startRegistryIn(opts: {
  dataDir: string;
  addr: string;
  ns?: string;
}): Promise<{ stop(): Promise<void> }> {
  const bin = '/usr/bin/docker-registry';
  if (!existsSync(bin)) throw new Error(`${bin} is missing (apt-get install docker-registry)`);
  const config = join(opts.dataDir, `config-${opts.addr.replace(/[^0-9]/g, '_')}.yml`);
  writeFileSync(config, registryConfigYaml({ addr: opts.addr, rootDir: join(opts.dataDir, 'data') }));
  const argv = [bin, 'serve', config];
  const child =
    opts.ns === undefined
      ? spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('/usr/bin/nsenter', [`--net=/run/netns/${opts.ns}`, '--', ...argv], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const port = opts.addr.split(':')[1]!;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited early: ${stderr}`);
    const ssArgs = ['-ltnH', `sport = :${port}`];
    const { stdout } =
      opts.ns === undefined
        ? await run('ss', ssArgs)
        : await run(IP, ['netns', 'exec', opts.ns, 'ss', ...ssArgs]);
    if (stdout.trim() !== '') break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not listen on ${opts.addr}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** A `ferry mount --json` process in a node namespace (p2p enabled, static peers). */
export interface FerryNode {
  i: number;
  env: FerryEnv;
  target: string;
  pid: number;
  stderr(): string;
  mounted: Promise<MountEvent>;
  exited: Promise<{ code: number | null; unmounted: MountEvent | undefined; stderr: string }>;
}

// Random per test run: inline secrets are held to the cluster-secret rules (src/config/secret.ts).
const LYING_PROXY = join(import.meta.dirname, 'lying-peer-proxy.mjs');

export const P2P_TEST_SECRET = randomBytes(32).toString('base64');

export function startFerryNode(
  cluster: NetnsCluster,
  i: number,
  opts: {
    ref: string;
    peers: number;
    env?: NodeJS.ProcessEnv;
    extraToml?: string;
    /** A lying peer: its chunk answers reach the others through a proxy that flips a bit in each body. */
    lie?: boolean;
  },
): FerryNode {
  const peerList = Array.from({ length: opts.peers }, (_, k) => `"${cluster.nodeAddr(k)}:7420"`).join(', ');
  const addr = cluster.nodeAddr(i);
  // The liar's own server moves to 7421 behind the proxy; it keeps the peer id (advertise) the others know.
  const listen =
    opts.lie === true ? `listen = "${addr}:7421"\nadvertise = "${addr}:7420"` : `listen = "${addr}:7420"`;
  const env = ferryEnv(
    `[prefetch]\nenabled = false\n\n[p2p]\nenabled = true\n${listen}\n` +
      `peers = [${peerList}]\nsecret = "${P2P_TEST_SECRET}"\n${opts.extraToml ?? ''}`,
    `insecureHosts = ["${cluster.registryAddr}"]`,
  );
  const liar =
    opts.lie === true
      ? cluster.spawnIn(cluster.nodeNs(i), [process.execPath, LYING_PROXY, `${addr}:7420`, `${addr}:7421`])
      : undefined;
  const target = join(env.dir, 'rootfs');
  mkdirSync(target);
  const proc = cluster.spawnIn(
    cluster.nodeNs(i),
    [process.execPath, FERRY_BIN, 'mount', opts.ref, target, '--json', '--config', env.configPath],
    { FERRY_LOG_LEVEL: 'info', ...opts.env },
  );
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-20_000)));
  proc.on('close', () => liar?.kill('SIGKILL'));
  const events: MountEvent[] = [];
  let notify: () => void = () => undefined;
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as MountEvent);
      notify();
    } catch {
      /* not JSON */
    }
  });
  const exited = new Promise<{ code: number | null; unmounted: MountEvent | undefined; stderr: string }>(
    // 'close', not 'exit': the `unmounted` line may still be in the pipe when the process has exited.
    (res) =>
      proc.on('close', (code) =>
        res({ code, unmounted: events.find((e) => e.event === 'unmounted'), stderr }),
      ),
  );
  const mounted = new Promise<MountEvent>((res, rej) => {
    notify = () => {
      const m = events.find((e) => e.event === 'mounted');
      if (m) res(m);
    };
    void exited.then(({ code }) => rej(new Error(`node ${i} exited (${code}) before mounting: ${stderr}`)));
  });
  mounted.catch(() => undefined);
  return { i, env, target, pid: proc.pid!, stderr: () => stderr, mounted, exited };
}

/** `ferry umount`, then the node's `unmounted` event; its state dir is removed. */
export async function stopFerryNode(n: FerryNode): Promise<MountEvent | undefined> {
  await ferry(['umount', n.target], n.env).catch(() => undefined);
  const exit = await n.exited;
  rmSync(n.env.dir, { recursive: true, force: true });
  return exit.unmounted;
}

/** sha256 of each file, read by `sha256sum` in the node's namespace; throws (with the node's log) on a failure. */
export async function readFiles(
  cluster: NetnsCluster,
  n: FerryNode,
  files: readonly string[],
): Promise<Map<string, string>> {
  const proc = cluster.spawnIn(cluster.nodeNs(n.i), ['sha256sum', ...files.map((f) => join(n.target, f))]);
  let out = '';
  let err = '';
  proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  // Longer than fuse.readDeadlineMs (60 s): a stuck read then shows as an EIO in `err`, not as a kill.
  const timer = setTimeout(() => proc.kill('SIGKILL'), 90_000);
  // 'close', not 'exit': the last lines of stdout may still be in flight when the process has exited.
  await new Promise((r) => proc.on('close', r));
  clearTimeout(timer);
  const got = new Map<string, string>();
  for (const line of out.trim().split('\n')) {
    const [sha, path] = line.split(/\s+/);
    if (sha && path) got.set(path.slice(n.target.length + 1), sha);
  }
  if (got.size !== files.length)
    throw new Error(
      `node ${n.i}: read ${got.size}/${files.length} files: ${err}\n${n.stderr().slice(-6000)}`,
    );
  return got;
}

/**
 * Writes an image of `files` incompressible files (data/fNN.bin, ~fileBytes each) and (unless `publish` is false) its
 * Ferry index into a registry storage dir under `dataDir` (through a loopback docker-registry), ready for
 * startRegistryIn. Returns each file's sha256 and the layer blob's size.
 */
export async function seedRegistry(
  dataDir: string,
  opts: { files: number; fileBytes: number; repo: string; publish?: boolean },
): Promise<{ files: string[]; sha: Map<string, string>; layerBytes: number }> {
  const tree = join(dataDir, 'tree');
  mkdirSync(join(tree, 'data'), { recursive: true });
  const sha = new Map<string, string>();
  const files: string[] = [];
  for (let i = 0; i < opts.files; i++) {
    const name = `data/f${String(i).padStart(3, '0')}.bin`;
    const bytes = pseudoRandom(opts.fileBytes + i * 4099, 2 * i + 1001); // distinct odd seeds: distinct bytes
    writeFileSync(join(tree, name), bytes);
    sha.set(name, createHash('sha256').update(bytes).digest('hex'));
    files.push(name);
  }
  const tar = execFileSync('tar', ['-C', tree, '--sort=name', '--owner=0', '--group=0', '-cf', '-', '.'], {
    maxBuffer: 1 << 30,
  });
  rmSync(tree, { recursive: true, force: true });
  const port = 20_000 + (process.pid % 20_000);
  const local = await startRegistryIn({ dataDir, addr: `127.0.0.1:${port}` });
  let layerBytes = 0;
  try {
    const client = testRegistryClient();
    const layer = gzipLayer(tar);
    layerBytes = layer.length;
    await pushImage(client, `127.0.0.1:${port}/${opts.repo}`, {
      layers: [{ data: layer, mediaType: MediaType.ociLayerGzip }],
    });
    await client.close();
    if (opts.publish !== false) {
      const indexEnv = ferryEnv();
      await ferry(['index', `127.0.0.1:${port}/${opts.repo}`, '--push'], indexEnv);
      rmSync(indexEnv.dir, { recursive: true, force: true });
    }
  } finally {
    await local.stop();
  }
  return { files, sha, layerBytes };
}
