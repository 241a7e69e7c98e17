// The load scenario shared by test/integration/load-mounts.test.ts (small, CI) and bench/load.ts (heavy):
// N images pushed to a local registry with published indexes, one `ferry mount` per image with prefetch and a
// background full fetch on, then R concurrent readers (a separate process) for a bounded time; reports read
// latencies, errors, byte mismatches and each mount process's resident memory.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { MediaType } from '../../src/image/manifest.js';
import { silentLogger } from '../../src/log.js';
import { RegistryClient } from '../../src/registry/client.js';
import { gzipLayer, makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { ferry, ferryEnv, startMount, type FerryEnv, type RunningMount } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry } from '../helpers/registry.js';

const run = promisify(execFile);

export interface LoadOptions {
  images: number;
  readers: number;
  durationMs: number;
  smallFiles: number;
  bigFileBytes: number;
  /** `[prefetch] background` of every mount. */
  background: 'none' | 'trace' | 'all';
  log?: (line: string) => void;
}

export interface PhaseStats {
  reads: number;
  bytes: number;
  errors: string[];
  mismatches: string[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LoadResult {
  /** Every file of every image read once, concurrently, while prefetch runs (cold and warm reads mixed). */
  warm: PhaseStats;
  /** Random ranges of cached data for durationMs. */
  measure: PhaseStats;
  /** The measure phase bypassed the page cache (O_DIRECT). */
  direct: boolean;
  /** VmRSS / VmHWM of each mount process at the end, KiB. */
  rssKb: number[];
  hwmKb: number[];
  mountMs: number[];
  wallMs: number;
}

const dataFile = (i: number): string =>
  `usr/share/data/${String(Math.floor(i / 100)).padStart(3, '0')}/file-${i}.dat`;

async function procKb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const { stdout } = await run('cat', [`/proc/${pid}/status`]);
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(stdout)?.[1] ?? 0);
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const log = o.log ?? (() => undefined);
  const t0 = performance.now();
  const registry = await startRegistry();
  const client = new RegistryClient({
    log: silentLogger(),
    requestTimeoutMs: 60_000,
    maxConcurrencyPerHost: 8,
    retries: 2,
  });
  const mounts: Array<{ env: FerryEnv; target: string; m: RunningMount }> = [];
  try {
    const base = mkdtempSync(join(tmpdir(), 'ferry-load-'));
    const corpora: CorpusLayer[][] = [];
    for (let i = 0; i < o.images; i++) {
      const corpus = makeCorpus(join(base, `img${i}`), {
        smallFiles: o.smallFiles,
        bigFileBytes: o.bigFileBytes,
        seed: 1000 + i * 7919,
      });
      corpora.push(corpus);
      const ref = `${registry.host}/load/img${i}:1`;
      await pushImage(client, ref, {
        layers: corpus.map((l) => ({ data: gzipLayer(l.tar, 1), mediaType: MediaType.ociLayerGzip })),
      });
      await ferry(['index', ref, '--push'], ferryEnv());
    }
    log(`pushed and indexed ${o.images} images in ${Math.round(performance.now() - t0)} ms`);
    const config = `[fuse]\nreadDeadlineMs = 60000\n\n[prefetch]\nenabled = true\nbackground = "${o.background}"\n`;
    const started = await Promise.all(
      corpora.map(async (_, i) => {
        const env = ferryEnv(config);
        const target = join(env.dir, 'rootfs');
        const m0 = performance.now();
        const m = await startMount(`${registry.host}/load/img${i}:1`, target, env);
        return { env, target, m, ms: performance.now() - m0 };
      }),
    );
    mounts.push(...started);
    log(`mounted ${o.images} images`);
    const files = [
      'usr/lib/big-random.bin',
      'usr/lib/big-text.txt',
      'usr/bin/tool',
      ...Array.from({ length: Math.min(200, o.smallFiles) }, (_, i) =>
        dataFile(Math.floor((i * o.smallFiles) / Math.min(200, o.smallFiles))),
      ),
    ]
      .filter((p) => p !== dataFile(1))
      .map((path) => ({ path, size: statSync(join(corpora[0]![0]!.dir, path)).size }));
    const reader = resolve(import.meta.dirname, 'load-reader.mjs');
    const cfg = {
      images: mounts.map((m, i) => ({ root: m.target, ref: corpora[i]![0]!.dir })),
      files,
      readers: o.readers,
      durationMs: o.durationMs,
      seed: 4242,
    };
    const { stdout } = await run(process.execPath, [reader, JSON.stringify(cfg)], {
      env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.min(128, o.readers)) },
      timeout: o.durationMs + 600_000,
      maxBuffer: 64 << 20,
    });
    const r = JSON.parse(stdout) as { warm: PhaseStats; measure: PhaseStats; direct: boolean };
    const rssKb = await Promise.all(mounts.map((m) => procKb(m.m.proc.pid!, 'VmRSS')));
    const hwmKb = await Promise.all(mounts.map((m) => procKb(m.m.proc.pid!, 'VmHWM')));
    return {
      ...r,
      rssKb,
      hwmKb,
      mountMs: started.map((s) => s.ms),
      wallMs: performance.now() - t0,
    };
  } finally {
    await Promise.all(
      mounts.map(async (n) => {
        await ferry(['umount', n.target], n.env).catch(() => undefined);
        await n.m.exited;
      }),
    );
    await client.close();
    await registry.stop();
  }
}

/** For reports: the reference bytes of one corpus file (used by callers that spot-check). */
export function referenceBytes(dir: string, path: string): Buffer {
  return readFileSync(join(dir, path));
}
