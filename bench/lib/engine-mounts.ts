// The three ways bench/fuse-engines.ts mounts one layer: fuse-native (`ferry mount`'s path), the raw FUSE server
// on a /dev/fuse descriptor of this process, and the raw server behind the FUSE holder (`ferry daemon`'s path).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { isFerryError } from '../../src/errors.js';
import { HolderClient } from '../../src/fuse/holder/client.js';
import { mountLayer } from '../../src/fuse/mount.js';
import {
  closeDevice,
  mountFuseDevice,
  readRequests,
  setReadAhead,
  unmountFuse,
  writeToDevice,
} from '../../src/fuse/raw/device.js';
import { mountHeldLayer } from '../../src/fuse/raw/held-layer.js';
import { createRawLayerServer } from '../../src/fuse/raw/layer-server.js';
import { MAX_READ_BYTES } from '../../src/fuse/raw/protocol.js';
import type { LayerReader } from '../../src/layer/layer-reader.js';
import type { LayerTree } from '../../src/layer/layer-tree.js';
import { silentLogger } from '../../src/log.js';
import { validateConfig } from '../../src/config/load.js';

export type EngineName = 'fuse-native' | 'raw' | 'holder';

export interface EngineMount {
  mountpoint: string;
  /** Errors the FUSE ops answered (EIO and friends); a healthy run has none. */
  failures(): number;
  stop(): Promise<void>;
}

export interface EngineMountOptions {
  mountpoint: string;
  tree: LayerTree;
  reader: LayerReader;
  /** Only for 'holder'. */
  holder?: HolderClient;
}

/** The daemon's FUSE timings (the config's defaults), given to all three so only the FUSE path differs. */
const timings = validateConfig({}).fuseTimings;

async function mountNative(o: EngineMountOptions): Promise<EngineMount> {
  const m = await mountLayer({
    mountpoint: o.mountpoint,
    tree: o.tree,
    reader: o.reader,
    log: silentLogger(),
    timings,
  });
  return { mountpoint: o.mountpoint, failures: () => m.ops.errors.failures, stop: () => m.unmount() };
}

async function mountRaw(o: EngineMountOptions): Promise<EngineMount> {
  const server = createRawLayerServer({ tree: o.tree, reader: o.reader, log: silentLogger(), timings });
  const fd = await mountFuseDevice({
    mountpoint: o.mountpoint,
    fsname: 'ferry',
    subtype: 'ferry',
    options: ['ro', 'allow_other', 'default_permissions', 'suid', 'dev', `max_read=${MAX_READ_BYTES}`],
  });
  const loop = readRequests(fd, (req) => {
    void server.handle(req).then((reply) => {
      if (reply !== undefined) writeToDevice(fd, reply);
    });
  });
  await setReadAhead(o.mountpoint, MAX_READ_BYTES); // as mountHeldLayer does for the daemon
  return {
    mountpoint: o.mountpoint,
    failures: () => server.errors.failures,
    async stop() {
      await unmountFuse(o.mountpoint);
      await loop; // ENODEV once the kernel ends the connection
      server.close();
      closeDevice(fd);
    },
  };
}

async function mountHeld(o: EngineMountOptions): Promise<EngineMount> {
  if (o.holder === undefined) throw new Error('the holder engine needs a HolderClient');
  const held = await mountHeldLayer({
    client: o.holder,
    mountpoint: o.mountpoint,
    tree: o.tree,
    reader: o.reader,
    log: silentLogger(),
    imageRef: 'bench',
    timings,
  });
  return {
    mountpoint: o.mountpoint,
    failures: () => held.server.errors.failures,
    stop: () => held.unmount(),
  };
}

export async function mountEngine(engine: EngineName, o: EngineMountOptions): Promise<EngineMount> {
  mkdirSync(o.mountpoint, { recursive: true });
  if (engine === 'fuse-native') return mountNative(o);
  if (engine === 'raw') return mountRaw(o);
  return mountHeld(o);
}

export interface RunningHolder {
  client: HolderClient;
  pid: number;
  stop(): Promise<void>;
}

/** `node bin/ferry.js fuse-holder --socket <dir>/h.sock` (needs dist/), connected; stop() SIGTERMs it. */
export async function startHolder(dir: string): Promise<RunningHolder> {
  const socketPath = join(dir, 'h.sock');
  const bin = resolve(import.meta.dirname, '../../bin/ferry.js');
  const proc: ChildProcess = spawn(process.execPath, [bin, 'fuse-holder', '--socket', socketPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] ?? '16' },
  });
  const tail: string[] = [];
  if (proc.stderr)
    createInterface({ input: proc.stderr }).on('line', (l) => tail.push(l) > 20 && tail.shift());
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let client: HolderClient | undefined;
  for (let i = 0; i < 200 && client === undefined; i++) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`the FUSE holder exited ${proc.exitCode ?? proc.signalCode}: ${tail.join('\n')}`);
    try {
      client = await HolderClient.connect({ socketPath, log: silentLogger() });
    } catch (e) {
      if (!isFerryError(e, 'UNAVAILABLE')) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (client === undefined) {
    proc.kill('SIGTERM');
    throw new Error(`no FUSE holder on ${socketPath} after 10 s: ${tail.join('\n')}`);
  }
  const connected = client;
  return {
    client: connected,
    pid: proc.pid ?? 0,
    async stop() {
      await connected.close().catch(() => undefined);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    },
  };
}
