// A big generated file in a gzip image, read cold and sequentially through `ferry mount` (index published with
// `ferry index --push`, so the mount is lazy): every byte checked with sha256sum in a child process, and the
// mount process's resident memory sampled while it streams. FERRY_RA_TEST_MIB sets the size (default 512 MiB;
// the full 1 GiB runs in bench/model-load.ts).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { silentLogger } from '../../src/log.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pseudoRandom, pseudoText } from '../helpers/corpus.js';
import { ferry, ferryEnv, startMount } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const execFileAsync = promisify(execFile);
const MiB = 1024 * 1024;
const SIZE_MIB = Number(process.env['FERRY_RA_TEST_MIB'] ?? 512);
/**
 * Bound on the mount process's RSS while it streams the file (cache.memoryBytes 64 MiB + read-ahead 64 MiB, and
 * chunk buffers awaiting GC: bin/ferry.js counts them in V8's global limit, which trades ~100 MB of peak RSS in a
 * bulk read for a third less CPU — 350–418 MB measured, 276–292 MB with FERRY_V8_GC_DEFAULTS=1). What it guards
 * is growth with the file's size: the file is 512 MiB.
 */
const RSS_BOUND_MB = 480;
const SEGMENT = 8 * MiB;

let registry: TestRegistry;
let client: RegistryClient;
let work: string;
let sourceSha: string;
const ref = (): string => `${registry.host}/model:gzip`;

/**
 * Writes the file in 8 MiB segments, alternately incompressible and text-like; every 64 KiB of text carries a
 * unique stamp so no two chunks are identical (identical chunks would dedupe and hide fetches).
 */
function generate(path: string): string {
  const hash = createHash('sha256');
  const text = pseudoText(SEGMENT, 5);
  const fd = openSync(path, 'w');
  try {
    for (let i = 0; i * SEGMENT < SIZE_MIB * MiB; i++) {
      let seg: Buffer;
      if (i % 2 === 0) seg = pseudoRandom(SEGMENT, 1000 + i);
      else {
        seg = Buffer.from(text);
        for (let o = 0; o < SEGMENT; o += 64 * 1024) seg.write(`[seg ${i} @${o}]`, o, 'latin1');
      }
      hash.update(seg);
      writeSync(fd, seg);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ferry-ra-big-'));
  const root = join(work, 'root');
  mkdirSync(join(root, 'models'), { recursive: true });
  let t = performance.now();
  sourceSha = generate(join(root, 'models', 'model.bin'));
  const layerPath = join(work, 'layer.tar.gz');
  execFileSync('sh', [
    '-c',
    `tar --sort=name --numeric-owner -C "${root}" -cf - . | pigz -3 > "${layerPath}"`,
  ]);
  rmSync(root, { recursive: true, force: true });
  const layer = readFileSync(layerPath);
  rmSync(layerPath);
  console.log(
    `[read-ahead big] generated ${SIZE_MIB} MiB, layer ${(layer.length / MiB).toFixed(0)} MiB gzip in ` +
      `${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  registry = await startRegistry();
  client = new RegistryClient({
    log: silentLogger(),
    requestTimeoutMs: 120_000,
    maxConcurrencyPerHost: 8,
    retries: 2,
  });
  await pushImage(client, ref(), { layers: [{ data: layer, mediaType: MediaType.ociLayerGzip }] });
  t = performance.now();
  await ferry(['index', ref(), '--push', '--json'], ferryEnv());
  console.log(`[read-ahead big] ferry index --push in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}, 300_000);

afterAll(async () => {
  await client?.close();
  await registry?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

async function rssMb(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /VmRSS:\s+(\d+) kB/.exec(text);
  return m ? (Number(m[1]) * 1024) / 1e6 : 0;
}

describe('read-ahead through ferry mount', () => {
  it(`streams a ${SIZE_MIB} MiB file cold with every byte right and bounded memory`, async () => {
    const env = ferryEnv();
    const target = join(env.dir, 'rootfs');
    const m = await startMount(ref(), target, env);
    const pid = m.proc.pid!;
    let peakMb = 0;
    const sampler = setInterval(() => void rssMb(pid).then((mb) => (peakMb = Math.max(peakMb, mb))), 100);
    try {
      const layers = m.mounted['layers'] as Array<{ indexSource: string }>;
      expect(layers[0]?.indexSource).toBe('registry'); // lazy: the published index, no layer streamed
      const t0 = performance.now();
      const { stdout } = await execFileAsync('sha256sum', [join(target, 'models', 'model.bin')], {
        timeout: 150_000,
      });
      const secs = (performance.now() - t0) / 1000;
      expect(stdout.split(' ')[0]).toBe(sourceSha);
      clearInterval(sampler);
      peakMb = Math.max(peakMb, await rssMb(pid));
      console.log(
        `[read-ahead big] cold sha256sum of ${SIZE_MIB} MiB through the mount: ${secs.toFixed(1)} s ` +
          `(${((SIZE_MIB * MiB) / 1e6 / secs).toFixed(0)} MB/s); ferry peak RSS ${peakMb.toFixed(0)} MB`,
      );
      expect(peakMb).toBeGreaterThan(0);
      expect(peakMb).toBeLessThan(RSS_BOUND_MB);
    } finally {
      clearInterval(sampler);
      await ferry(['umount', target], env).catch(() => m.proc.kill('SIGTERM'));
    }
    const exit = await m.exited;
    expect(exit.code).toBe(0);
    // Every chunk of the file crossed the link once: read-ahead and demand reads shared fetches.
    const served = exit.unmounted?.['served'] as { origin: { chunks: number; bytes: number } };
    expect(served.origin.chunks).toBe(SIZE_MIB);
  });
});
