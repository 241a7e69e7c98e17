// Profile of Ferry's per-byte work (issue 16): `ferry mount` under `node --cpu-prof` on a cold node with a
// published index, against a loopback docker-registry, for (a) a sequential read of a large incompressible file
// and (b) a container-like start (thousands of small files and a few libraries read whole). Prints the
// CPU seconds of each thread of the mount process, the profile split into stages (bench/lib/cpuprofile.ts), and
// a `curl` Range GET of the same blob bytes in the same run. Profiles are kept when FERRY_PROFILE_DIR is set.
// Flags: --quick (256 MiB file), --workload seq|start|both, --size <MiB>, --no-prof (figures without the
// profiler's overhead); FERRY_MOUNT_NODE_OPTIONS adds Node flags to the mount process only.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pseudoRandom } from '../test/helpers/corpus.js';
import { ferry, ferryEnv, startMount } from '../test/helpers/ferry-cli.js';
import { pushGzipImage, startBenchRegistry, type BenchRegistry } from './lib/bench-registry.js';
import { formatSummary, STAGES, summarise, type Stage } from './lib/cpuprofile.js';
import { fmtRss, RssSampler, servedFrom } from './lib/ferry-node.js';
import { cached, cachedTreeLayer, smallFilePath, smallFiles, type FileSpec } from './lib/gen.js';
import type { ReadOp } from './lib/image-1g.js';
import { readSet } from './lib/read-set.js';
import { elapsed, emitResults, fmtMB, fmtMs, fmtRate, fmtRatio, MiB, parseArgs, say } from './lib/report.js';
import type { ResultRow } from './lib/report.js';
import { dropCaches } from './lib/sys.js';
import { cpuDelta, threadCpu } from './lib/thread-cpu.js';

const run = promisify(execFile);
const BIG = 'models/weights.bin';
const LIBS = 40;
const SMALL = 6000;

/** One gzip layer holding a file of random bytes, 8 MiB pieces with distinct odd seeds (no duplicate chunks). */
async function seqLayer(size: number, fresh: boolean): Promise<string> {
  const { path } = await cached(`profile-seq-${size}-pigz1.tar.gz`, fresh, async (tmp) => {
    const root = `${tmp}.d`;
    mkdirSync(join(root, 'models'), { recursive: true });
    const fh = await import('node:fs/promises').then((m) => m.open(join(root, BIG), 'w'));
    try {
      for (let k = 0; k * 8 * MiB < size; k++) {
        await fh.write(pseudoRandom(Math.min(8 * MiB, size - k * 8 * MiB), (7001 + k) * 2 + 1));
      }
    } finally {
      await fh.close();
    }
    const pack = `set -o pipefail; tar --sort=name --numeric-owner -C "${root}" -cf - . | pigz -1 > "${tmp}"`;
    try {
      await run('bash', ['-c', pack]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  return path;
}

const libPath = (i: number): string => `usr/lib/libprof${String(i).padStart(2, '0')}.so`;

/** A start-like layer: SMALL small files in dirs of 200 and LIBS 1–3 MiB "libraries" (mixed content), gzip -6. */
function startFiles(): FileSpec[] {
  return [
    ...smallFiles('usr/share/prof', SMALL, 500),
    ...Array.from({ length: LIBS }, (_, i) => ({
      path: libPath(i),
      size: MiB + ((i * 524_287) % (2 * MiB)),
      content: 'mixed' as const,
      seed: 90_001 + 2 * i,
    })),
  ];
}

interface Workload {
  name: 'seq' | 'start';
  repo: string;
  digest: string;
  blobBytes: number;
  /** Mount config: the seq read runs without startup prefetch (it would share the link with the read). */
  toml: string;
  /** Reads through the mount from child processes; returns the file bytes read. */
  read(target: string): Promise<number>;
}

async function timedCurl(url: string, last: number): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  const { stdout } = await run('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-r',
    `0-${last}`,
    '-w',
    '%{size_download}',
    url,
  ]);
  return { bytes: Number(stdout), ms: elapsed(t0) };
}

async function profileWorkload(
  w: Workload,
  host: string,
  keepDir: string | undefined,
  profile: boolean,
): Promise<{ rows: ResultRow[]; notes: string[] }> {
  const env = ferryEnv(w.toml);
  const target = join(env.dir, 'rootfs');
  const profDir = keepDir ? join(keepDir, w.name) : join(env.dir, 'prof');
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  await dropCaches();
  // startMount spawns synchronously before its first await: the flag reaches that child and no other.
  const saved = process.env['NODE_OPTIONS'];
  // FERRY_MOUNT_NODE_OPTIONS: extra V8/Node flags for the mount alone (e.g. --max-semi-space-size=32).
  const extra = process.env['FERRY_MOUNT_NODE_OPTIONS'] ?? '';
  const flags = `${profile ? `--cpu-prof --cpu-prof-dir=${profDir}` : ''} ${extra}`.trim();
  if (flags !== '') process.env['NODE_OPTIONS'] = flags;
  const mounting = startMount(`${host}/${w.repo}`, target, env, 600_000);
  if (saved === undefined) delete process.env['NODE_OPTIONS'];
  else process.env['NODE_OPTIONS'] = saved;
  const m = await mounting;
  const pid = m.proc.pid!;
  const rss = new RssSampler(pid);
  const before = await threadCpu(pid);
  const t0 = performance.now();
  const bytes = await w.read(target);
  const readMs = elapsed(t0);
  const after = await threadCpu(pid);
  await ferry(['umount', target], env).catch(() => m.proc.kill('SIGTERM'));
  const exit = await m.exited;
  const peak = rss.stop();
  const served = servedFrom(exit.unmounted);

  // Same bytes with curl, same run, page cache dropped as for the mount.
  await dropCaches();
  const url = `http://${host}/v2/${w.repo.split(':')[0]}/blobs/${w.digest}`;
  const curl = await timedCurl(url, w.blobBytes - 1);

  const cpu = cpuDelta(pid, before, after);
  const cpuTotal = cpu.reduce((a, r) => a + r.s, 0);
  say(`\n## ${w.name}: ${fmtMB(bytes)} of files read in ${fmtMs(readMs)} = ${fmtRate(bytes, readMs)}`);
  say(
    `origin ${served.origin.chunks} chunks / ${fmtMB(served.origin.bytes)}; RSS peak ${fmtRss(peak.peakKb)}; ` +
      `curl -r of the blob (${fmtMB(w.blobBytes)}): ${fmtRate(curl.bytes, curl.ms)}`,
  );
  say(
    `CPU of the mount process during the read: ${cpuTotal.toFixed(2)} s in ${(readMs / 1000).toFixed(2)} s wall`,
  );
  for (const r of cpu.filter((x) => x.s >= 0.01)) {
    say(`  ${r.role.padEnd(16)} ${String(r.threads).padStart(3)} thread(s) ${r.s.toFixed(2).padStart(7)} s`);
  }
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  // The mount's profiles: the biggest is its main thread; the others are its worker threads.
  const profiles = files
    .filter((f) => f.includes(`.${pid}.`))
    .map((f) => ({ f, size: statSync(join(profDir, f)).size }))
    .sort((a, b) => b.size - a.size);
  const total = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
  for (const [i, p] of profiles.entries()) {
    const s = summarise(join(profDir, p.f));
    for (const line of formatSummary(s, `${i === 0 ? 'main thread' : 'worker'} ${p.f}`)) say(line);
    for (const k of STAGES) total[k] += s.stages[k];
  }
  const busy = STAGES.filter((k) => k !== 'idle').reduce((a, k) => a + total[k], 0);
  say(`### all threads of the mount (whole process life, including mount and unmount):`);
  for (const k of STAGES) {
    if (k === 'idle' || total[k] < 1) continue;
    say(
      `  ${k.padEnd(16)} ${(total[k] / 1000).toFixed(3).padStart(8)} s ${((100 * total[k]) / busy).toFixed(1).padStart(5)}%`,
    );
  }
  if (keepDir) say(`profiles kept in ${profDir}`);
  // Only now: without FERRY_PROFILE_DIR the profiles live in the node's state dir.
  rmSync(env.dir, { recursive: true, force: true, maxRetries: 3 });
  const ferryRate = bytes / readMs;
  const curlRate = curl.bytes / curl.ms;
  const mainS = cpu.find((r) => r.role === 'main')?.s ?? 0;
  return {
    rows: [
      {
        metric: `${w.name}: cold read through ferry mount vs curl -r`,
        ferry: fmtRate(bytes, readMs),
        baseline: fmtRate(curl.bytes, curl.ms),
        ratio: fmtRatio(ferryRate / curlRate),
        target: w.name === 'seq' ? '>= 0.6x curl' : '',
        ...(w.name === 'seq' ? { met: ferryRate / curlRate >= 0.6 } : {}),
      },
      {
        metric: `${w.name}: mount CPU s (main thread) per wall s`,
        ferry: `${cpuTotal.toFixed(2)} (${mainS.toFixed(2)})`,
        baseline: `${(readMs / 1000).toFixed(2)} s wall`,
        ratio: fmtRatio(mainS / (readMs / 1000)),
        target: '',
      },
    ],
    notes: [
      `${w.name}: busy ${(busy / 1000).toFixed(2)} s: ` +
        STAGES.filter((k) => k !== 'idle' && total[k] >= 1)
          .map((k) => `${k} ${((100 * total[k]) / busy).toFixed(0)}%`)
          .join(', '),
    ],
  };
}

async function pushIndexed(
  bench: BenchRegistry,
  repoTag: string,
  layer: string,
): Promise<Omit<Workload, 'name' | 'toml' | 'read'>> {
  const img = await pushGzipImage(bench, repoTag, [layer]);
  await ferry(['index', `${bench.registry.host}/${repoTag}`, '--push'], ferryEnv());
  const digest = img.layerDigests[0]!;
  return { repo: repoTag, digest, blobBytes: img.compressedBytes };
}

async function main(): Promise<void> {
  const args = parseArgs();
  const argv = process.argv.slice(2);
  const flag = (n: string): string | undefined => {
    const i = argv.indexOf(n);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const which = flag('--workload') ?? 'both';
  const size = Number(flag('--size') ?? (args.quick ? 256 : 768)) * MiB;
  const keepDir = process.env['FERRY_PROFILE_DIR'];
  say(`# profile-read: ${which}; seq file ${fmtMB(size)}, start ${SMALL} small files + ${LIBS} libraries`);
  const t = performance.now();
  const seqPath = which === 'start' ? undefined : await seqLayer(size, args.noCache);
  const startPath =
    which === 'seq'
      ? undefined
      : (await cachedTreeLayer(`profile-start-${SMALL}-${LIBS}`, args.noCache, startFiles, 6)).path;
  say(`layers ready in ${fmtMs(elapsed(t))}`);
  const bench = await startBenchRegistry();
  const rows: ResultRow[] = [];
  const notes: string[] = [];
  try {
    const workloads: Workload[] = [];
    if (seqPath) {
      const p = await pushIndexed(bench, 'prof/seq:1', seqPath);
      workloads.push({
        ...p,
        name: 'seq',
        toml: '[prefetch]\nenabled = false\n',
        async read(target) {
          const { stderr } = await run('dd', [`if=${join(target, BIG)}`, 'of=/dev/null', 'bs=1M']);
          return Number(/^(\d+) bytes/m.exec(stderr)?.[1] ?? 0);
        },
      });
    }
    if (startPath) {
      const p = await pushIndexed(bench, 'prof/start:1', startPath);
      const ops: ReadOp[] = [
        ...Array.from({ length: LIBS }, (_, i) => ({
          path: libPath(i),
          offset: 0,
          length: 3 * MiB,
          kind: 'lib',
        })),
        ...Array.from({ length: SMALL }, (_, i) => ({
          path: smallFilePath('usr/share/prof', i),
          offset: 0,
          length: 9000,
          kind: 'small',
        })),
      ];
      workloads.push({
        ...p,
        name: 'start',
        toml: '',
        async read(target) {
          const r = await readSet(target, ops, 8);
          if (r.errors.length > 0) throw new Error(`start reads failed: ${r.errors.slice(0, 3).join('; ')}`);
          return r.bytes;
        },
      });
    }
    for (const w of workloads) {
      const r = await profileWorkload(w, bench.registry.host, keepDir, !argv.includes('--no-prof'));
      rows.push(...r.rows);
      notes.push(...r.notes);
    }
  } finally {
    await bench.close();
  }
  emitResults('profile-read', rows, notes);
}

await main();
