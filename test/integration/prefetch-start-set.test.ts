// Without a trace, mount-time prefetch fetches the image's start set: an image whose layers hold this machine's
// real /bin/dash, /bin/ls, their ELF interpreter and libraries, a layer of big unrelated files and a script
// entrypoint. The prefetch names and fetches exactly the entrypoint, the shell, the loader and the libraries;
// running the start (chroot into the mount) then reads nothing from the registry; and it moves far fewer bytes
// than the old 4 MiB-per-layer default, measured on the same image.
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { gzipLayer, pseudoRandom } from '../helpers/corpus.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { spawnMount, type Event } from '../prefetch/mount-process.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const LIB = 'lib/x86_64-linux-gnu';
const LIBS = ['libc.so.6', 'libselinux.so.1', 'libpcre2-8.so.0'];
const START_FILES = [
  '/bin/dash',
  '/lib64/ld-linux-x86-64.so.2',
  '/bin/ls',
  ...LIBS.map((l) => `/${LIB}/${l}`),
];
const SCRIPT = '#!/bin/sh\nexec "$@"\n';
const INDEX = '[index]\nchunkSizeBytes = 65536\nspanBytes = 262144\n';
const NO_TRACE = '[prefetch]\nquietMs = 600000\nwindowMs = 600000\n';
/** Reads during the start must be served by what the prefetch fetched, not fetched ahead. */
const NO_READ_AHEAD = '[readAhead]\nenabled = false\n';

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let ref: string;
let tarBytes: number[] = [];

function tarDir(dir: string): Buffer {
  return execFileSync(
    'tar',
    ['--format=pax', '--sort=name', '--owner=0', '--group=0', '-C', dir, '-cf', '-', '.'],
    {
      maxBuffer: 256 * MiB,
    },
  );
}

function put(root: string, path: string, from: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  copyFileSync(realpathSync(from), join(root, path));
}

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-startset-'));
  const base = join(dir, 'base');
  put(base, 'lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2');
  for (const lib of LIBS) put(base, `${LIB}/${lib}`, `/${LIB}/${lib}`);
  put(base, 'bin/dash', '/bin/dash');
  put(base, 'bin/ls', '/bin/ls');
  // Unrelated files of the same layer, around the start set's (tar sorts by name): never prefetched.
  put(base, 'bin/busybox', '/usr/bin/busybox');
  mkdirSync(join(base, 'usr/share/misc'), { recursive: true });
  writeFileSync(join(base, 'usr/share/misc/unrelated.bin'), pseudoRandom(3 * MiB, 9));
  symlinkSync('dash', join(base, 'bin/sh'));
  const data = join(dir, 'data');
  mkdirSync(join(data, 'srv/blobs'), { recursive: true });
  for (let i = 0; i < 3; i++) writeFileSync(join(data, `srv/blobs/big-${i}.bin`), pseudoRandom(6 * MiB, i));
  const app = join(dir, 'app');
  mkdirSync(join(app, 'app'), { recursive: true });
  writeFileSync(join(app, 'app/start.sh'), SCRIPT);
  chmodSync(join(app, 'app/start.sh'), 0o755);
  const tars = [base, data, app].map(tarDir);
  tarBytes = tars.map((t) => t.length);
  await pushImage(client, `${registry.host}/startset:1`, {
    layers: tars.map((t) => ({ data: gzipLayer(t), mediaType: MediaType.ociLayerGzip })),
    config: {
      config: {
        Entrypoint: ['/app/start.sh'],
        Cmd: ['ls', '/srv/blobs'],
        Env: ['PATH=/bin'],
        WorkingDir: '/',
      },
    },
  });
  ref = `${proxy.host}/startset:1`;
  await ferry(['index', ref, '--push'], ferryEnv(INDEX));
}, 300_000);

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await registry?.stop();
});

interface Prefetched {
  traceOrigin: string;
  stats: { planned: number; plannedBytes: number; fetched: number; fetchedBytes: number; errors: number };
  startSet: { files: Array<{ path: string; role: string; bytes: number }>; bytes: number };
}

/** Mounts on a fresh node, waits for the prefetch, optionally runs the start; returns the event and its traffic. */
async function mountAndStart(
  toml: string,
  start: boolean,
): Promise<{ prefetched: Prefetched; startBlobBytes: number; output: string }> {
  const env = ferryEnv(`${INDEX}\n${toml}`);
  const target = join(env.dir, 'rootfs');
  const m = spawnMount(ref, target, env);
  try {
    await m.waitFor('mounted');
    const prefetched = (await m.waitFor('prefetched')) as Event & Prefetched;
    proxy.resetStats();
    let output = '';
    if (start) output = (await run('chroot', [target, '/app/start.sh', 'ls', '/srv/blobs'])).stdout;
    const startBlobBytes = proxy.stats.blobBytes;
    await ferry(['umount', target], env);
    const exit = await m.exited;
    expect(exit.code, exit.stderr).toBe(0);
    return { prefetched, startBlobBytes, output };
  } finally {
    await m.stop();
  }
}

describe('start-set prefetch without a trace', () => {
  it('fetches the entrypoint, its interpreter and libraries, and far less than 4 MiB per layer', async () => {
    const now = await mountAndStart(`${NO_TRACE}\n${NO_READ_AHEAD}`, true);
    const pf = now.prefetched;
    expect(pf.traceOrigin).toBe('none');
    expect(pf.startSet.files.map((f) => [f.role, f.path])).toEqual([
      ['entrypoint', '/app/start.sh'],
      ['interpreter', '/bin/dash'],
      ['interpreter', '/lib64/ld-linux-x86-64.so.2'],
      ['library', `/${LIB}/libc.so.6`],
      ['named', '/bin/ls'],
      ['library', `/${LIB}/libselinux.so.1`],
      ['library', `/${LIB}/libpcre2-8.so.0`],
    ]);
    expect(pf.stats).toMatchObject({ errors: 0, fetched: pf.stats.planned, fetchedBytes: pf.startSet.bytes });
    // Exactly those files' chunks: their sizes plus at most a partial chunk at each end of each file.
    const sizes = START_FILES.reduce((s, f) => s + statSync(f).size, SCRIPT.length);
    expect(pf.stats.fetchedBytes).toBeGreaterThanOrEqual(sizes);
    expect(pf.stats.fetchedBytes).toBeLessThanOrEqual(sizes + 7 * 2 * 65536);
    // The start runs from what was prefetched.
    expect(now.output.split('\n').filter(Boolean)).toEqual(['big-0.bin', 'big-1.bin', 'big-2.bin']);
    expect(now.startBlobBytes).toBe(0);

    // The old default on the same image, for the record.
    const old = await mountAndStart(
      `${NO_TRACE}startSetBytes = 0\ndefaultBytesPerLayer = ${4 * MiB}\n${NO_READ_AHEAD}`,
      true,
    );
    expect(old.prefetched.startSet.files).toEqual([]);
    expect(old.prefetched.stats.fetchedBytes).toBeGreaterThan(4 * MiB);
    console.log(
      `start set: ${pf.stats.fetchedBytes} bytes in ${pf.stats.fetched} chunks (${pf.startSet.files.length} files); ` +
        `4 MiB/layer: ${old.prefetched.stats.fetchedBytes} bytes in ${old.prefetched.stats.fetched} chunks; ` +
        `registry bytes during the start after each: ${now.startBlobBytes} / ${old.startBlobBytes}; ` +
        `layers ${tarBytes.join(' + ')} bytes uncompressed`,
    );
    expect(pf.stats.fetchedBytes).toBeLessThan(old.prefetched.stats.fetchedBytes / 2);
  }, 300_000);
});
