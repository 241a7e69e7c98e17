// Benchmark (issue 16, memory): the resident memory of one `ferry daemon` (and its FUSE holder) with N distinct
// images mounted lazily through the snapshots API, as containerd's CRI unpacker asks for them, each with a few
// percent read. Default config (the tests' node config without its cache.memoryBytes override); indexes from
// signed published artifacts.
// Flags: --quick (smaller images); --images N (default 10); --heap-snapshot DIR (the loaded daemon writes a V8
// heap snapshot into DIR; bench/lib/heap-summary.ts sums it by constructor); --variant NAME:K=V,... (more daemons
// on the same images, with more environment); --smaps PREFIX (each loaded daemon's memory map).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Digest } from '../src/image/digest.js';
import { MediaType } from '../src/image/manifest.js';
import { snapshotsClient } from '../test/api/grpc-client.js';
import { fuseMountsBelow, startFerryDaemon, stopHolders } from '../test/helpers/containerd.js';
import { gzipLayer, makeCorpus } from '../test/helpers/corpus.js';
import { prepareWithCriLabels } from '../test/helpers/cri-prepare.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild } from '../test/helpers/ferry-cli.js';
import { diffId, pushImage, type TestLayer } from '../test/helpers/push-image.js';
import { startRegistry, testRegistryClient } from '../test/helpers/registry.js';
import { elapsed, emitResults, parseArgs, say, type ResultRow } from './lib/report.js';

const run = promisify(execFile);
const TARGET_MIB = 150;

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** VmRSS (and its anonymous and file-backed parts), VmHWM of `pid` in MiB, and its thread count. */
function memory(pid: number): { rss: number; anon: number; file: number; hwm: number; threads: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return {
    rss: field('VmRSS') / 1024,
    anon: field('RssAnon') / 1024,
    file: field('RssFile') / 1024,
    hwm: field('VmHWM') / 1024,
    threads: field('Threads'),
  };
}

const mib = (v: number): string => `${v.toFixed(0)} MiB`;

const { quick } = parseArgs();
const images = flag('images', 10);
requireBuild();
const work = mkdtempSync(join(tmpdir(), 'ferry-rss-'));
const registry = await startRegistry();
const client = testRegistryClient();
const t0 = performance.now();
const pushed: Array<{
  ref: string;
  manifestDigest: Digest;
  layers: TestLayer[];
  digests: Digest[];
}> = [];
let entries = 0;
for (let i = 0; i < images; i++) {
  const corpus = makeCorpus(join(work, `src-${i}`), {
    smallFiles: quick ? 1500 : 6000,
    bigFileBytes: (quick ? 2 : 8) << 20,
    seed: 100 + i,
  });
  const layers = corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip }));
  const ref = `${registry.host}/rss/app${i}:1`;
  const image = await pushImage(client, ref, { layers });
  // Signed with the tests' default key, which ferryEnv()'s nodes trust: the daemon mounts without streaming.
  await ferry(['index', ref, '--push'], ferryEnv());
  pushed.push({
    ref,
    manifestDigest: image.manifestDigest,
    layers,
    digests: image.manifest.layers.map((l) => l.digest),
  });
  entries += Number((await run('sh', ['-c', `find ${join(work, `src-${i}`)} | wc -l`])).stdout.trim());
}
say(
  `${images} images pushed and published in ${(elapsed(t0) / 1000).toFixed(1)} s (~${entries} entries in all)`,
);

const snapshotAt = process.argv.indexOf('--heap-snapshot');
const snapshotDir = snapshotAt >= 0 ? process.argv[snapshotAt + 1] : undefined;
if (snapshotDir !== undefined)
  process.env['NODE_OPTIONS'] = `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshotDir}`;
/** One fresh node (state, cache, daemon) with `extraEnv` in the daemon's environment; its rows. */
async function measure(label: string, extraEnv: Record<string, string>): Promise<ResultRow[]> {
  const env = ferryEnv();
  // The tests' config pins the memory chunk tier (32 MiB); this figure is for the default.
  writeFileSync(env.configPath, readFileSync(env.configPath, 'utf8').replace(/^memoryBytes = \d+\n/m, ''));
  const saved = { ...process.env };
  const own = process.env['NODE_OPTIONS']; // --heap-snapshot's
  Object.assign(process.env, extraEnv);
  if (own !== undefined && extraEnv['NODE_OPTIONS'] !== undefined)
    process.env['NODE_OPTIONS'] = `${own} ${extraEnv['NODE_OPTIONS']}`;
  const daemon = await startFerryDaemon(FERRY_BIN, env.configPath, {
    socketPath: join(env.dir, 'run', 'snapshotter.sock'),
    root: join(env.dir, 'state', 'snapshots'),
  }).finally(() => {
    for (const k of Object.keys(extraEnv)) Reflect.deleteProperty(process.env, k);
    Object.assign(process.env, saved);
  });
  const grpc = await snapshotsClient(join(env.dir, 'run', 'snapshotter.sock'));
  const rows: ResultRow[] = [];
  try {
    await sleep(1000);
    const idle = memory(daemon.pid);
    say(
      `daemon ready, nothing mounted: RSS ${mib(idle.rss)} (anonymous ${mib(idle.anon)}, file-backed ` +
        `${mib(idle.file)}; ${idle.threads} threads)`,
    );
    let mounts = 0;
    for (const p of pushed) {
      const before = new Set(await fuseMountsBelow(daemon.root));
      const { codes } = await prepareWithCriLabels(grpc, {
        ref: p.ref,
        manifestDigest: p.manifestDigest,
        layerDigests: p.digests,
        diffIds: p.layers.map(diffId),
      });
      const fresh = (await fuseMountsBelow(daemon.root)).filter((m) => !before.has(m));
      if (fresh.length !== p.layers.length) {
        throw new Error(
          `${p.ref}: ${fresh.length} lazy mounts for ${p.layers.length} layers (${codes.join(',')})`,
        );
      }
      mounts += fresh.length;
      // A start reads a few percent: every 25th file of each layer, in a child (FUSE is served by the daemon).
      await run('sh', [
        '-c',
        'for m in "$@"; do find "$m" -type f | awk "NR % 25 == 0" | xargs -r cat > /dev/null; done',
        'sh',
        ...fresh,
      ]);
    }
    await sleep(3000); // prefetch and read-ahead settle
    const loaded = memory(daemon.pid);
    const holder = daemon.holderPid !== undefined ? memory(daemon.holderPid) : undefined;
    say(
      `${images} images (${mounts} layer mounts) mounted and read: daemon RSS ${mib(loaded.rss)} ` +
        `(anonymous ${mib(loaded.anon)}, file-backed ${mib(loaded.file)}; peak ${mib(loaded.hwm)}; ` +
        `${loaded.threads} threads)${holder !== undefined ? `, holder ${mib(holder.rss)}` : ''}`,
    );
    // The daemon's own view of its heap, from its Prometheus endpoint (process metrics, default address).
    const metrics = await fetch('http://127.0.0.1:9650/metrics').then(
      (r) => r.text(),
      () => '',
    );
    const gauge = (name: string): string => {
      const v = new RegExp(`^ferry_${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics)?.[1];
      return v === undefined ? '?' : mib(Number(v) / 2 ** 20);
    };
    say(
      `heap used ${gauge('nodejs_heap_size_used_bytes')} of ${gauge('nodejs_heap_size_total_bytes')}, ` +
        `external ${gauge('nodejs_external_memory_bytes')}`,
    );
    // `--smaps PREFIX`: the loaded daemon's memory map (PREFIX-<variant>), to see which mappings hold its memory.
    const smapsAt = process.argv.indexOf('--smaps');
    if (smapsAt >= 0) {
      const file = `${process.argv[smapsAt + 1]}-${label === '' ? 'default' : label}`;
      writeFileSync(file, readFileSync(`/proc/${daemon.pid}/smaps`));
    }
    if (snapshotDir !== undefined) {
      process.kill(daemon.pid, 'SIGUSR2');
      await sleep(20_000); // writing a snapshot stops the daemon's thread for seconds
      say(`heap snapshot written to ${snapshotDir}`);
    }
    const tag = label === '' ? '' : ` [${label}]`;
    rows.push(
      {
        metric: `daemon RSS, nothing mounted${tag}`,
        ferry: mib(idle.rss),
        baseline: '-',
        ratio: '-',
        target: '-',
      },
      {
        metric: `daemon RSS, ${images} images mounted${tag}`,
        ferry: mib(loaded.rss),
        baseline: '-',
        ratio: '-',
        target: `<= ${TARGET_MIB} MiB`,
        met: loaded.rss <= TARGET_MIB,
      },
      { metric: `daemon peak RSS${tag}`, ferry: mib(loaded.hwm), baseline: '-', ratio: '-', target: '-' },
      ...(holder !== undefined
        ? [
            {
              metric: `FUSE holder RSS${tag}`,
              ferry: mib(holder.rss),
              baseline: '-',
              ratio: '-',
              target: '-',
            },
          ]
        : []),
      {
        metric: `daemon RSS per mounted image${tag}`,
        ferry: mib((loaded.rss - idle.rss) / images),
        baseline: '-',
        ratio: '-',
        target: '-',
      },
    );
    return rows;
  } finally {
    grpc.close();
    await daemon.stop().catch(() => undefined);
    await stopHolders();
    await rm(env.dir, { recursive: true, force: true });
  }
}

/**
 * The environment ferry.service gives the daemon (its Environment= lines): the figure is for the daemon as
 * shipped, whatever the unit sets before Node starts (allocator and V8 settings).
 */
function unitEnv(): Record<string, string> {
  const unit = readFileSync(new URL('../systemd/ferry.service', import.meta.url), 'utf8');
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(\w+)=(.*)$/gm)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  return env;
}

/** `--variant NAME:K=V,K=V` (repeatable): more daemons measured on the same images, the unit's env + these. */
function variants(): Array<{ label: string; env: Record<string, string> }> {
  const out: Array<{ label: string; env: Record<string, string> }> = [{ label: '', env: unitEnv() }];
  process.argv.forEach((a, i) => {
    const v = process.argv[i + 1];
    if (a !== '--variant' || v === undefined) return;
    const [label, list = ''] = v.split(':', 2) as [string, string?];
    const env = unitEnv();
    for (const kv of list.split(',').filter((x) => x !== '')) {
      const eq = kv.indexOf('=');
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    out.push({ label, env });
  });
  return out;
}

const rows: ResultRow[] = [];
try {
  for (const v of variants()) {
    if (v.label !== '') say(`--- variant ${v.label}: ${JSON.stringify(v.env)}`);
    rows.push(...(await measure(v.label, v.env)));
  }
} finally {
  await client.close();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
emitResults('daemon-rss', rows, [
  `${images} images, ~${entries} entries, default config, ferry.service's Environment= (${JSON.stringify(unitEnv())})`,
]);
