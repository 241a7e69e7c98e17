// `ferry mount` under faults and load: a registry that dies mid-read, one that flips bits, Ctrl-C during a
// read, a full cache disk, and 32 concurrent readers checking every byte. Real registry, real mounts.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { gzipLayer, makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv, startMount, type FerryEnv, type RunningMount } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { until } from '../helpers/wait.js';

const run = promisify(execFile);
const DEADLINE_MS = 3000;

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let corpus: CorpusLayer[];
let ref: string;

/** Reads a file with `cat` in a child process: its sha256, or the error cat reported, and how long it took. */
async function catSha(
  path: string,
  timeoutMs = 30_000,
): Promise<{ sha?: string; error?: string; ms: number }> {
  const t0 = performance.now();
  try {
    const { stdout } = await run('cat', [path], {
      timeout: timeoutMs,
      maxBuffer: 1 << 30,
      encoding: 'buffer',
    });
    return { sha: createHash('sha256').update(stdout).digest('hex'), ms: performance.now() - t0 };
  } catch (e) {
    return { error: String((e as { stderr?: Buffer }).stderr ?? e), ms: performance.now() - t0 };
  }
}

function refSha(rel: string): string {
  return createHash('sha256')
    .update(readFileSync(join(corpus[0]!.dir, rel)))
    .digest('hex');
}

function dataFile(i: number): string {
  return `usr/share/data/${String(Math.floor(i / 100)).padStart(3, '0')}/file-${i}.dat`;
}

async function mountNode(registryToml = ''): Promise<{ env: FerryEnv; target: string; m: RunningMount }> {
  const env = ferryEnv(`[fuse]\nreadDeadlineMs = ${DEADLINE_MS}\n`, registryToml);
  const target = join(env.dir, 'rootfs');
  const m = await startMount(ref, target, env);
  return { env, target, m };
}

async function stop(n: { env: FerryEnv; target: string; m: RunningMount }): Promise<string> {
  await ferry(['umount', n.target], n.env).catch(() => undefined);
  const exit = await n.m.exited;
  return exit.stderr;
}

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  corpus = makeCorpus(mkdtempSync(join(tmpdir(), 'ferry-faults-')), {
    smallFiles: 3000,
    bigFileBytes: 6 << 20,
  });
  ref = `${proxy.host}/faults:1`;
  await pushImage(client, ref, {
    layers: corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip })),
  });
  // Publish the indexes so that node mounts are lazy (nothing streams the layers at mount time).
  await ferry(['index', ref, '--push'], ferryEnv());
}, 300_000);

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await registry?.stop();
});

describe('ferry mount under faults', () => {
  it('keeps serving cached files while the registry is down, fails uncached reads within the deadline, recovers', async () => {
    const node = await mountNode('requestTimeoutMs = 1000\nretries = 1');
    try {
      // file-3 and file-4 share a packed chunk; reading one caches the other.
      expect((await catSha(join(node.target, dataFile(3)))).sha).toBe(refSha(dataFile(3)));
      proxy.fault = 'down';
      proxy.dropConnections();
      const neighbour = await catSha(join(node.target, dataFile(4)));
      expect(neighbour.sha).toBe(refSha(dataFile(4)));
      const far = await catSha(join(node.target, 'usr/lib/big-random.bin'));
      expect(far.sha).toBeUndefined();
      expect(far.error).toMatch(/Input\/output error/);
      expect(far.ms).toBeLessThan(DEADLINE_MS + 4000);
      proxy.fault = 'none';
      expect((await catSha(join(node.target, 'usr/lib/big-random.bin'))).sha).toBe(
        refSha('usr/lib/big-random.bin'),
      );
    } finally {
      proxy.fault = 'none';
      await stop(node);
    }
  });

  it('never serves or caches a chunk whose bytes were flipped, and names it in one log line', async () => {
    const node = await mountNode();
    let stderr = '';
    try {
      proxy.fault = 'flip';
      const bad = await catSha(join(node.target, 'usr/lib/big-text.txt'));
      expect(bad.sha).toBeUndefined();
      expect(bad.error).toMatch(/Input\/output error/);
      proxy.fault = 'none';
      expect((await catSha(join(node.target, 'usr/lib/big-text.txt'))).sha).toBe(
        refSha('usr/lib/big-text.txt'),
      );
    } finally {
      proxy.fault = 'none';
      stderr = await stop(node);
    }
    const lines = stderr.split('\n').filter((l) => /INTEGRITY|FORMAT/.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.join('\n')).toMatch(/sha256:[0-9a-f]{64}/);
  });

  it('unmounts cleanly on Ctrl-C while a read is stuck', async () => {
    const node = await mountNode();
    const faulted = proxy.stats.faulted;
    proxy.fault = 'stall';
    try {
      const reader = spawn('cat', [join(node.target, 'usr/lib/big-random.bin')], { stdio: 'ignore' });
      const readerDone = new Promise<number | null>((r) => reader.on('exit', (c) => r(c)));
      await until('the read to reach the stalled registry', () => proxy.stats.faulted > faulted);
      const stopAt = performance.now();
      node.m.proc.kill('SIGINT');
      const exit = await node.m.exited;
      // In-flight fetches are aborted at shutdown, not left to the registry's 30 s request timeout.
      expect(performance.now() - stopAt).toBeLessThan(10_000);
      expect(exit.code).toBe(0);
      expect(exit.unmounted).toBeDefined();
      expect(await readerDone).not.toBe(0);
      const { stdout } = await run('cat', ['/proc/self/mountinfo']);
      expect(stdout).not.toContain(node.target);
      expect(stdout).not.toContain(node.env.dir);
    } finally {
      proxy.fault = 'none';
    }
  });

  it('cleans up after a killed run at the next start and mounts again at the same place', async () => {
    const first = await mountNode();
    expect((await catSha(join(first.target, dataFile(3)))).sha).toBe(refSha(dataFile(3)));
    first.m.proc.kill('SIGKILL');
    await first.m.exited;
    const dead = await run('cat', ['/proc/self/mountinfo']);
    expect(dead.stdout).toContain(first.env.dir); // the killed run left its mounts behind
    const again = await startMount(ref, first.target, first.env);
    try {
      expect((await catSha(join(first.target, dataFile(5)))).sha).toBe(refSha(dataFile(5)));
      const { stdout } = await run('cat', ['/proc/self/mountinfo']);
      // One overlay at the target and one FUSE mount per layer: nothing left over from the dead run.
      const ours = stdout.split('\n').filter((l) => l.includes(first.env.dir));
      expect(ours.filter((l) => l.includes(' - overlay '))).toHaveLength(1);
      expect(ours.filter((l) => l.includes(' - fuse'))).toHaveLength(3);
    } finally {
      await ferry(['umount', first.target], first.env);
      await again.exited;
    }
  });

  it('keeps serving with a full cache disk and logs it once', async () => {
    const env = ferryEnv(`[fuse]\nreadDeadlineMs = ${DEADLINE_MS}\n`);
    const cacheDir = join(env.dir, 'state', 'chunks');
    mkdirSync(cacheDir, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', cacheDir]);
    const target = join(env.dir, 'rootfs');
    const m = await startMount(ref, target, env);
    let stderr = '';
    try {
      for (const f of ['usr/lib/big-random.bin', 'usr/lib/big-text.txt', dataFile(2500)]) {
        expect((await catSha(join(target, f))).sha).toBe(refSha(f));
      }
    } finally {
      await ferry(['umount', target], env).catch(() => undefined);
      stderr = (await m.exited).stderr;
      await run('umount', [cacheDir]);
    }
    const enospc = stderr.split('\n').filter((l) => l.includes('ENOSPC'));
    expect(enospc, enospc.join('\n')).toHaveLength(1);
  });
});

describe('ferry mount under load', () => {
  it('serves 32 concurrent readers over random ranges of many files, every byte checked', async () => {
    const node = await mountNode();
    try {
      const files = [
        'usr/lib/big-random.bin',
        'usr/lib/big-text.txt',
        'usr/bin/tool',
        ...Array.from({ length: 200 }, (_, i) => dataFile(i * 15)),
      ]
        .filter((p) => p !== dataFile(1))
        .map((path) => ({ path, size: statSync(join(corpus[0]!.dir, path)).size }));
      const script = join(import.meta.dirname, '../helpers/random-reader.mjs');
      const { stdout } = await run(
        process.execPath,
        [script, node.target, corpus[0]!.dir, JSON.stringify(files), '32', '40', '12345'],
        { timeout: 120_000, maxBuffer: 64 << 20 },
      );
      const stats = JSON.parse(stdout) as {
        reads: number;
        bytes: number;
        mismatches: string[];
        errors: string[];
      };
      expect(stats.errors).toEqual([]);
      expect(stats.mismatches).toEqual([]);
      expect(stats.reads).toBe(32 * 40);
      expect(stats.bytes).toBeGreaterThan(1 << 20);
    } finally {
      await stop(node);
    }
  });
});
