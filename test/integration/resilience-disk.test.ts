// Disk pressure: the chunk cache on a small tmpfs. Eviction keeps it under cache.maxBytes while a `ferry mount`
// reads far more than that; kill -9 at random points of chunk writes never leaves a corrupt chunk to serve nor
// a tmp file after open(); a `ferry mount` killed mid-read restarts on the same cache and serves every byte right.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskChunkStore } from '../../src/chunks/disk-chunk-store.js';
import { digestHex, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/manifest.js';
import { silentLogger } from '../../src/log.js';
import { RegistryClient } from '../../src/registry/client.js';
import { gzipLayer, makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { ferry, ferryEnv, startMount } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';

if (process.getuid?.() !== 0) throw new Error('disk pressure tests must run as root (they mount tmpfs)');

const run = promisify(execFile);
const MiB = 1 << 20;
let registry: TestRegistry;
let client: RegistryClient;
let corpus: CorpusLayer[];
let ref: string;
const tmpfs: string[] = [];

async function mountTmpfs(dir: string, sizeBytes: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir]);
  tmpfs.push(dir);
}

/** Every file under `dir`: relative name and size. */
function walk(dir: string, rel = ''): Array<{ name: string; size: number }> {
  const out: Array<{ name: string; size: number }> = [];
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = join(rel, e.name);
    if (e.isDirectory()) out.push(...walk(dir, r));
    else out.push({ name: r, size: statSync(join(dir, r)).size });
  }
  return out;
}

/** A chunk file whose name is not the sha256 of its content. */
function corruptFiles(dir: string): string[] {
  return walk(dir)
    .filter((f) => /^[0-9a-f]{2}\/[0-9a-f]{62}$/.test(f.name))
    .filter(
      (f) =>
        createHash('sha256')
          .update(readFileSync(join(dir, f.name)))
          .digest('hex') !== f.name.replace('/', ''),
    )
    .map((f) => f.name);
}

async function catSha(path: string): Promise<string> {
  const { stdout } = await run('cat', [path], { maxBuffer: 1 << 30, encoding: 'buffer' });
  return createHash('sha256').update(stdout).digest('hex');
}
const refSha = (rel: string): string =>
  createHash('sha256')
    .update(readFileSync(join(corpus[0]!.dir, rel)))
    .digest('hex');
const dataFile = (i: number): string =>
  `usr/share/data/${String(Math.floor(i / 100)).padStart(3, '0')}/file-${i}.dat`;
const FILES = [
  'usr/lib/big-random.bin',
  'usr/lib/big-text.txt',
  'usr/bin/tool',
  ...Array.from({ length: 60 }, (_, i) => dataFile(2 + i * 33)),
];

beforeAll(async () => {
  registry = await startRegistry();
  client = testRegistryClient();
  corpus = makeCorpus(mkdtempSync(join(tmpdir(), 'ferry-disk-')), {
    smallFiles: 2000,
    bigFileBytes: 12 * MiB,
  });
  ref = `${registry.host}/disk:1`;
  await pushImage(client, ref, {
    layers: corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip })),
  });
  await ferry(['index', ref, '--push'], ferryEnv());
}, 300_000);

afterAll(async () => {
  for (const d of tmpfs) await run('umount', ['-l', d]).catch(() => undefined);
  await client?.close();
  await registry?.stop();
});

describe('chunk cache under disk pressure', () => {
  it('stays under cache.maxBytes on a small tmpfs while a mount reads 3x that, every byte right', async () => {
    const maxBytes = 8 * MiB;
    const env = ferryEnv(`[prefetch]\nenabled = false\n`);
    const cacheDir = join(env.dir, 'cache');
    await mountTmpfs(cacheDir, 24 * MiB);
    writeFileSync(
      env.configPath,
      readFileSync(env.configPath, 'utf8').replace(
        /\[cache\][^[]*/,
        `[cache]\ndir = "${cacheDir}"\nmaxBytes = ${maxBytes}\nmemoryBytes = ${MiB}\n\n`,
      ),
    );
    const target = join(env.dir, 'rootfs');
    const m = await startMount(ref, target, env);
    let peak = 0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(
          peak,
          walk(cacheDir).reduce((s, f) => s + f.size, 0),
        );
      } catch {
        /* a file vanished mid-walk */
      }
    }, 50);
    try {
      for (let round = 0; round < 2; round++)
        for (const f of FILES) expect(await catSha(join(target, f)), f).toBe(refSha(f));
    } finally {
      clearInterval(sampler);
      await ferry(['umount', target], env).catch(() => undefined);
    }
    const { stderr } = await m.exited;
    const total = walk(cacheDir).reduce((s, f) => s + f.size, 0);
    console.log(
      `disk: cache ${(total / MiB).toFixed(1)} MiB at end, peak ${(peak / MiB).toFixed(1)} MiB, bound ${maxBytes / MiB} MiB`,
    );
    // One chunk (1 MiB default) of slack: eviction unlinks asynchronously after the put that overflowed.
    expect(total).toBeLessThanOrEqual(maxBytes);
    expect(peak).toBeLessThanOrEqual(maxBytes + 2 * MiB);
    expect(stderr).not.toMatch(/ENOSPC/);
    expect(corruptFiles(cacheDir)).toEqual([]);
  });

  it('kill -9 at random points of chunk writes: no corrupt chunk served, no tmp file after open()', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ferry-kill-')), 'chunks');
    await mountTmpfs(dir, 16 * MiB); // fills: maxBytes above the tmpfs size, so ENOSPC happens too
    const writer = resolve(import.meta.dirname, '../load/chunk-writer.ts');
    let acknowledged = 0;
    let tmpSeen = 0;
    for (let round = 0; round < 12; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx/esm', writer, dir, String(24 * MiB)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const done: Digest[] = [];
      const ready = new Promise<void>((r) =>
        createInterface({ input: child.stdout }).on('line', (l) =>
          l === 'ready' ? r() : done.push(l as Digest),
        ),
      );
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      await ready;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 300));
      child.kill('SIGKILL');
      await exited;
      tmpSeen += walk(dir).filter((f) => f.name.includes('.tmp-')).length;
      // What the killed process left: every complete-looking chunk file holds exactly its digest's bytes.
      expect(corruptFiles(dir)).toEqual([]);
      const store = new DiskChunkStore({ dir, maxBytes: 24 * MiB, log: silentLogger() });
      await store.open();
      expect(walk(dir).filter((f) => f.name.includes('.tmp-'))).toEqual([]);
      // Acknowledged puts that are still on disk read back verified (some were evicted or dropped on ENOSPC).
      for (const d of done.slice(-5)) {
        const got = await store.get(d);
        if (got !== undefined) expect(createHash('sha256').update(got).digest('hex')).toBe(digestHex(d));
      }
      acknowledged += done.length;
    }
    // A file damaged behind the store's back (e.g. a torn write after power loss) is never served.
    const victim = walk(dir).find((f) => /^[0-9a-f]{2}\/[0-9a-f]{62}$/.test(f.name) && f.size > 10);
    expect(victim).toBeDefined();
    writeFileSync(join(dir, victim!.name), readFileSync(join(dir, victim!.name)).subarray(0, 5));
    const store = new DiskChunkStore({ dir, maxBytes: 24 * MiB, log: silentLogger() });
    await store.open();
    expect(await store.get(`sha256:${victim!.name.replace('/', '')}` as Digest)).toBeUndefined();
    console.log(
      `disk: 12 kill -9 rounds, ${acknowledged} acknowledged puts, ${tmpSeen} tmp files left by kills (all removed by open)`,
    );
    expect(acknowledged).toBeGreaterThan(12);
  });

  it('a ferry mount killed mid-read restarts on the same cache and serves every byte right', async () => {
    const env = ferryEnv(`[prefetch]\nenabled = true\nbackground = "all"\n`);
    const target = join(env.dir, 'rootfs');
    for (let round = 0; round < 3; round++) {
      const m = await startMount(ref, target, env);
      const reader = spawn(
        'sh',
        ['-c', `for f in ${FILES.map((f) => join(target, f)).join(' ')}; do cat $f >/dev/null; done`],
        { stdio: 'ignore' },
      );
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 800));
      m.proc.kill('SIGKILL');
      await m.exited;
      reader.kill('SIGKILL');
    }
    const cacheDir = join(env.dir, 'state', 'chunks');
    expect(corruptFiles(cacheDir)).toEqual([]);
    const m = await startMount(ref, target, env);
    try {
      expect(walk(cacheDir).filter((f) => f.name.includes('.tmp-'))).toEqual([]);
      for (const f of FILES) expect(await catSha(join(target, f)), f).toBe(refSha(f));
    } finally {
      await ferry(['umount', target], env).catch(() => undefined);
      await m.exited;
    }
  });
});
