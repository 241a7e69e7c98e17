// Benchmark: one layer (every chunk in memory) served three ways in one run — fuse-native (`ferry mount`), the raw
// FUSE server on this process's /dev/fuse descriptor, and the raw server behind the FUSE holder (`ferry daemon`).
// Each is read from child processes: dd with O_DIRECT and cold buffered, 4 KiB O_DIRECT random reads, find+lstat.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountEngine, startHolder, type EngineName, type RunningHolder } from './lib/engine-mounts.js';
import { BIG_FILE, enginesLayer, layerShape } from './lib/engines-layer.js';
import { ddDirect, randomReads, sha256sum, type RandomResult } from './lib/engine-probes.js';
import {
  elapsed,
  emitResults,
  fmtMB,
  fmtMs,
  fmtRatio,
  parseArgs,
  percentile,
  say,
  table,
  type ResultRow,
} from './lib/report.js';
import { ddRead, dropCaches, findStat } from './lib/sys.js';

const ENGINES: readonly EngineName[] = ['fuse-native', 'raw', 'holder'];

interface EngineFigures {
  mountMs: number;
  findColdMs: number;
  findWarmMs: number;
  directGBps: number;
  coldGBps: number;
  random: RandomResult;
}

const gbps = (r: { bytes: number; ms: number }): number => r.bytes / 1e9 / (r.ms / 1000);

async function main(): Promise<void> {
  const args = parseArgs();
  const { bigBytes, smallCount } = layerShape(args);
  say(
    `# fuse-engines${args.quick ? ' (--quick)' : ''}: a ${fmtMB(bigBytes)} file and ${smallCount} small files`,
  );
  const layer = await enginesLayer(args);
  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-engines-'));
  const live = new Set<{ stop(): Promise<void> }>();
  let holder: RunningHolder | undefined;
  const cleanup = async (): Promise<void> => {
    for (const m of live) await m.stop().catch(() => undefined);
    live.clear();
    await holder?.stop();
    holder = undefined;
  };
  const onSignal = (): void => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const notes: string[] = [];
  const figures = new Map<EngineName, EngineFigures>();
  const rounds = args.quick ? 1 : 2;
  const randomSec = args.quick ? 2 : 5;
  try {
    const refEntries = (await findStat(layer.refDir)).entries;
    holder = await startHolder(work);
    say(`FUSE holder pid ${holder.pid}; UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE']}`);
    for (const engine of ENGINES) {
      let t = performance.now();
      const m = await mountEngine(engine, {
        mountpoint: join(work, `mnt-${engine}`),
        tree: layer.tree,
        reader: layer.reader,
        holder: holder.client,
      });
      live.add(m);
      const mountMs = elapsed(t);
      const big = join(m.mountpoint, BIG_FILE);
      // A fresh mount: the kernel has no dentry or attribute of this filesystem yet.
      const cold = await findStat(m.mountpoint);
      if (cold.entries !== refEntries)
        throw new Error(`${engine}: find saw ${cold.entries} entries, GNU tar extracted ${refEntries}`);
      const warm: number[] = [];
      for (let r = 0; r < 3; r++) warm.push((await findStat(m.mountpoint)).ms);
      const direct: number[] = [];
      const buffered: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const d = await ddDirect(big);
        if (d.bytes !== bigBytes)
          throw new Error(`${engine}: dd iflag=direct read ${d.bytes} of ${bigBytes} bytes`);
        direct.push(gbps(d));
        const dropped = await dropCaches();
        if (dropped !== undefined && !notes.includes(dropped)) notes.push(dropped);
        const b = await ddRead(big);
        if (b.bytes !== bigBytes) throw new Error(`${engine}: dd read ${b.bytes} of ${bigBytes} bytes`);
        buffered.push(gbps(b));
      }
      const sum = await sha256sum(big);
      if (sum !== layer.bigSha256)
        throw new Error(`${engine}: ${BIG_FILE} has sha256 ${sum}, want ${layer.bigSha256}`);
      const random = await randomReads(big, randomSec, join(layer.refDir, BIG_FILE));
      const failures = m.failures();
      t = performance.now();
      await m.stop();
      live.delete(m);
      if (failures > 0) throw new Error(`${engine}: the FUSE server answered ${failures} errors`);
      const f: EngineFigures = {
        mountMs,
        findColdMs: cold.ms,
        findWarmMs: percentile(warm, 50),
        directGBps: Math.max(...direct),
        coldGBps: Math.max(...buffered),
        random,
      };
      figures.set(engine, f);
      say(
        `${engine}: mounted in ${fmtMs(mountMs)}; find ${cold.entries} cold ${fmtMs(cold.ms)}, warm ` +
          `${warm.map(fmtMs).join(', ')}; dd direct ${direct.map((g) => g.toFixed(2)).join(', ')} GB/s; cold buffered ` +
          `${buffered.map((g) => g.toFixed(2)).join(', ')} GB/s; random ${random.reads} reads (${random.perSec.toFixed(0)}/s, ` +
          `p50 ${random.p50Us.toFixed(0)} µs, p99 ${random.p99Us.toFixed(0)} µs); sha256 ok; unmounted in ${fmtMs(elapsed(t))}`,
      );
    }
  } finally {
    await cleanup();
    rmSync(work, { recursive: true, force: true });
    await layer.close();
  }
  const served = layer.composed.stats();
  notes.push(
    `chunks served from memory ${served.memory.chunks}, from the origin ${served.origin.chunks} (0: the FUSE path ` +
      'alone is measured); attr/entry/negative timeouts 3600 s and 1 MiB max_read/readahead on all three',
  );
  notes.push(
    `best of ${rounds} for dd; find warm = median of 3; random = ${randomSec} s of 4 KiB O_DIRECT reads at ` +
      'queue depth 1; ratios are engine / fuse-native (throughputs: higher is better; times: lower is better)',
  );
  report(figures, notes);
}

function report(figures: Map<EngineName, EngineFigures>, notes: string[]): void {
  const fig = (e: EngineName): EngineFigures => figures.get(e)!;
  type Metric = { name: string; get: (f: EngineFigures) => number; fmt: (v: number) => string };
  const metrics: Metric[] = [
    { name: 'seq read dd bs=1M iflag=direct', get: (f) => f.directGBps, fmt: (v) => `${v.toFixed(2)} GB/s` },
    { name: 'seq read, cold buffered', get: (f) => f.coldGBps, fmt: (v) => `${v.toFixed(2)} GB/s` },
    { name: '4 KiB O_DIRECT random reads', get: (f) => f.random.perSec, fmt: (v) => `${v.toFixed(0)}/s` },
    { name: '4 KiB random read p50', get: (f) => f.random.p50Us, fmt: (v) => `${v.toFixed(0)} µs` },
    { name: '4 KiB random read p99', get: (f) => f.random.p99Us, fmt: (v) => `${v.toFixed(0)} µs` },
    { name: 'find+lstat, fresh mount', get: (f) => f.findColdMs, fmt: fmtMs },
    { name: 'find+lstat, warm (median)', get: (f) => f.findWarmMs, fmt: fmtMs },
    { name: 'mount', get: (f) => f.mountMs, fmt: fmtMs },
  ];
  const native = fig('fuse-native');
  say('');
  say(
    table(
      ['metric', 'fuse-native', 'raw', 'holder', 'raw/fn', 'holder/fn'],
      metrics.map((m) => [
        m.name,
        m.fmt(m.get(native)),
        m.fmt(m.get(fig('raw'))),
        m.fmt(m.get(fig('holder'))),
        fmtRatio(m.get(fig('raw')) / m.get(native)),
        fmtRatio(m.get(fig('holder')) / m.get(native)),
      ]),
    ),
  );
  const rows: ResultRow[] = metrics
    .filter((m) => m.name !== 'mount')
    .flatMap((m) =>
      (['raw', 'holder'] as const).map((e) => ({
        metric: `${m.name}, ${e === 'raw' ? 'raw in-process' : 'holder'} vs fuse-native`,
        ferry: m.fmt(m.get(fig(e))),
        baseline: m.fmt(m.get(native)),
        ratio: fmtRatio(m.get(fig(e)) / m.get(native)),
        target: '',
      })),
    );
  emitResults('fuse-engines', rows, notes);
}

// Each raw mount parks a libuv pool thread in a blocking /dev/fuse read, and libuv sizes its pool before any of
// this code runs: without UV_THREADPOOL_SIZE in the environment, run again with it (as bin/ferry.js does).
if (process.env['UV_THREADPOOL_SIZE'] === undefined) {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: '16' },
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, sig) => process.exit(code ?? (sig === null ? 1 : 128)));
} else {
  await main();
}
