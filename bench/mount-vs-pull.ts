// Benchmark 3: time to first byte and time to read a 5% working set of a ~1 GiB image — `ferry mount` on an
// empty node (indexes published beforehand with `ferry index --push`) against a full pull + `tar -xzf` — on
// loopback and on a 200 Mbit/s link shaped with tc tbf inside a network namespace. Also samples the mount
// process's RSS.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { FaultProxy } from '../test/helpers/fault-proxy.js';
import { ferry, ferryEnv } from '../test/helpers/ferry-cli.js';
import { benchClient, pushGzipImage, startBenchRegistry } from './lib/bench-registry.js';
import { fmtRss, mountOnNewNode, servedFrom } from './lib/ferry-node.js';
import { demandOf, demandTotal, describeDemand, publishedIndexes } from './lib/demand.js';
import { fullPull } from './lib/full-pull.js';
import { image1g, imageLayers, workingSet, type ReadOp } from './lib/image-1g.js';
import { readSet, type ReadSetResult } from './lib/read-set.js';
import {
  elapsed,
  emitResults,
  fmtMB,
  fmtMs,
  fmtRatio,
  parseArgs,
  percentile,
  say,
  type ResultRow,
} from './lib/report.js';
import { createShapedLink, type ShapedLink } from './lib/shaped-link.js';

const run = promisify(execFile);
const READ_CONCURRENCY = 8;
const LINK_MBIT = 200;
const TARGET = 0.15;

interface Scenario {
  link: string;
  ferry: {
    mountMs: number;
    ttfbMs: number;
    wsMs: number;
    mountBytes: number;
    readBytes: number;
    requests: number;
  };
  pull: { pullMs: number; totalMs: number; extractMs: number; ttfbMs: number; wsMs: number; bytes: number };
  rssKb: number;
}

/** Wall time for a fresh node process to load the modules `ferry mount` runs (median of 3). */
async function cliStartupMs(): Promise<number> {
  const mod = resolve(import.meta.dirname, '../dist/cli/mount-command.js');
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await run(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(mod)})`]);
    times.push(elapsed(t0));
  }
  return percentile(times, 50);
}

function kinds(r: ReadSetResult): string {
  return Object.entries(r.byKind)
    .map(([k, v]) => `${k} ${v.ops}×/${fmtMB(v.bytes)} avg ${fmtMs(v.ms / v.ops)} max ${fmtMs(v.maxMs)}`)
    .join('; ');
}

async function scenario(
  name: string,
  proxy: FaultProxy,
  ops: readonly ReadOp[],
  work: string,
  indexBytes: number,
): Promise<Scenario> {
  const ref = `${proxy.host}/bench/app:1`;
  say(`\n-- ${name}: ferry mount on an empty node --`);
  proxy.resetStats();
  const node = await mountOnNewNode(ref);
  let ferryRead: ReadSetResult;
  let mountBytes: number;
  let requests: number;
  let readBytes: number;
  try {
    mountBytes = proxy.stats.blobBytes;
    say(
      `mounted in ${fmtMs(node.mountMs)}; ${fmtMB(mountBytes)} of blobs fetched by then ` +
        `(published indexes ${fmtMB(indexBytes)}, the rest is the default prefetch already running)`,
    );
    ferryRead = await readSet(node.target, ops, READ_CONCURRENCY);
    readBytes = proxy.stats.blobBytes - mountBytes;
    requests = proxy.stats.rangeRequests;
  } catch (e) {
    await node.stop();
    throw e;
  }
  const stopped = await node.stop();
  if (ferryRead.errors.length > 0)
    throw new Error(`reads through the mount failed: ${ferryRead.errors.join(', ')}`);
  const served = servedFrom(stopped.unmounted);
  say(
    `working set: ${fmtMB(ferryRead.bytes)} in ${fmtMs(ferryRead.totalMs)}, first byte after ${fmtMs(ferryRead.ttfbMs)}; ` +
      `fetched ${fmtMB(readBytes)} in ${requests} range requests; chunks from registry ${served.origin.chunks} ` +
      `(${fmtMB(served.origin.bytes)} uncompressed), memory ${served.memory.chunks}, disk ${served.disk.chunks}`,
  );
  say(`  by kind: ${kinds(ferryRead)}`);
  say(
    `  ferry mount RSS: ${fmtRss(node.rssAfterMountKb)} after mount, peak ${fmtRss(stopped.rss.peakKb)} ` +
      `(VmHWM ${fmtRss(stopped.rss.hwmKb)})`,
  );
  const prefetch = stopped.unmounted?.['prefetch'];
  if (prefetch !== undefined) say(`  prefetch stats at unmount: ${JSON.stringify(prefetch)}`);
  rmSync(node.env.dir, { recursive: true, force: true });

  say(`-- ${name}: full pull + extract --`);
  proxy.resetStats();
  const client = benchClient();
  const dir = join(work, `extract-${name}`);
  let pull;
  let pullRead: ReadSetResult;
  try {
    pull = await fullPull(client, ref, dir);
    pullRead = await readSet(dir, ops, READ_CONCURRENCY);
  } finally {
    await client.close();
  }
  rmSync(dir, { recursive: true, force: true });
  if (pullRead.digest !== ferryRead.digest)
    throw new Error('working set read through ferry differs from the extracted tree');
  say(
    `pulled ${fmtMB(pull.blobBytes)} in ${fmtMs(pull.pullMs)}, extracted (overlapping) by ${fmtMs(pull.totalMs)} ` +
      `(tar -xzf ${fmtMs(pull.extractMs)}); working set read in ${fmtMs(pullRead.totalMs)}; contents equal ferry's`,
  );
  return {
    link: name,
    ferry: {
      mountMs: node.mountMs,
      ttfbMs: node.mountMs + ferryRead.ttfbMs,
      wsMs: node.mountMs + ferryRead.totalMs,
      mountBytes,
      readBytes,
      requests,
    },
    pull: {
      pullMs: pull.pullMs,
      totalMs: pull.totalMs,
      extractMs: pull.extractMs,
      ttfbMs: pull.totalMs + pullRead.ttfbMs,
      wsMs: pull.totalMs + pullRead.totalMs,
      bytes: pull.blobBytes,
    },
    rssKb: Math.max(stopped.rss.peakKb, stopped.rss.hwmKb),
  };
}

async function main(): Promise<void> {
  const args = parseArgs();
  const spec = image1g(args);
  say(`# mount-vs-pull${args.quick ? ' (--quick)' : ''}: ${spec.name}, ${fmtMB(spec.fileBytes)} of files`);
  let t = performance.now();
  const layers = await imageLayers(spec, args.noCache);
  say(`layers ready in ${fmtMs(elapsed(t))}${layers.generated ? ' (generated)' : ' (cached)'}`);
  const ops = workingSet(args, spec);
  const wsBytes = ops.reduce((a, o) => a + o.length, 0);
  say(
    `working set: ${ops.length} reads, ${fmtMB(wsBytes)} = ${((100 * wsBytes) / spec.fileBytes).toFixed(1)}% of ` +
      `the file bytes; read ${READ_CONCURRENCY} at a time after the first`,
  );

  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-mvp-'));
  const bench = await startBenchRegistry();
  let link: ShapedLink | undefined;
  let shapedProxy: FaultProxy | undefined;
  const publisher = ferryEnv();
  const scenarios: Scenario[] = [];
  const notes: string[] = [];
  let minimumBytes = 0;
  let indexBytes = 0;
  try {
    t = performance.now();
    const pushed = await pushGzipImage(bench, 'bench/app:1', layers.paths);
    say(
      `pushed ${pushed.layerDigests.length} layers, ${fmtMB(pushed.compressedBytes)} in ${fmtMs(elapsed(t))}`,
    );

    t = performance.now();
    const { stdout } = await ferry(
      ['index', `${bench.proxy.host}/bench/app:1`, '--push', '--json'],
      publisher,
    );
    const indexMs = elapsed(t);
    const built = (JSON.parse(stdout) as { layers: Array<{ buildMs: number; uncompressedSize: number }> })
      .layers;
    const buildMs = built.reduce((a, l) => a + l.buildMs, 0);
    const tarBytes = built.reduce((a, l) => a + l.uncompressedSize, 0);
    say(
      `publisher: ferry index --push took ${fmtMs(indexMs)} (builds ${fmtMs(buildMs)} for ${fmtMB(tarBytes)} of tar) — ` +
        'not part of the lazy figures',
    );
    notes.push(`index build + publish (once per image, by the publisher): ${fmtMs(indexMs)}`);
    t = performance.now();
    const published = await publishedIndexes(bench.client, `${bench.registry.host}/bench/app:1`);
    const indexFetchMs = elapsed(t);
    const demand = demandOf(published.indexes, ops);
    const windows = published.indexes.reduce((a, ix) => a + ix.windows.reduce((b, w) => b + w.length, 0), 0);
    say(
      `published indexes: ${fmtMB(published.blobBytes)} to download at mount ` +
        `(${published.indexes.reduce((a, ix) => a + ix.checkpoints.length, 0)} checkpoints, ` +
        `${fmtMB(windows)} of 32 KiB windows before compression)`,
    );
    for (const line of describeDemand(demand)) say(line);
    const startupMs = await cliStartupMs();
    say(
      `mount-time components measured here: node + ferry modules load ${fmtMs(startupMs)}; resolve + find + ` +
        `download + deserialize the published indexes (in this process, loopback) ${fmtMs(indexFetchMs)}`,
    );
    notes.push(
      `mount-time components: process start + module load ≈ ${fmtMs(startupMs)}, index fetch + deserialize ≈ ` +
        `${fmtMs(indexFetchMs)} on loopback (+ ${fmtMB(published.blobBytes)} at the link rate when shaped)`,
    );
    indexBytes = published.blobBytes;
    minimumBytes = published.blobBytes + demandTotal(demand);
    notes.push(
      `least a lazy mount can fetch for this working set with these indexes: ${fmtMB(minimumBytes)} ` +
        `(indexes ${fmtMB(published.blobBytes)} + chunks ${fmtMB(demandTotal(demand))})`,
    );

    scenarios.push(await scenario('loopback', bench.proxy, ops, work, indexBytes));

    link = await createShapedLink({
      rateMbit: LINK_MBIT,
      registryDataDir: bench.dataDir,
      loopbackRegistryHost: bench.registry.host,
      workDir: work,
      log: (l) => say(l),
    });
    say(`\nshaped link: ${link.description}`);
    if (link.mode === 'app')
      notes.push(
        'shaped figures use the application-level token bucket (no tc tbf, or FERRY_BENCH_SHAPING=app)',
      );
    shapedProxy = await new FaultProxy(link.registryHost).start();
    scenarios.push(await scenario(`${LINK_MBIT}mbit`, shapedProxy, ops, work, indexBytes));
  } finally {
    await shapedProxy?.stop();
    await link?.close();
    await bench.close();
    rmSync(publisher.dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }

  const rows: ResultRow[] = [];
  for (const s of scenarios) {
    const wsRatio = s.ferry.wsMs / s.pull.wsMs;
    rows.push(
      {
        metric: `time to first byte (${s.link})`,
        ferry: fmtMs(s.ferry.ttfbMs),
        baseline: fmtMs(s.pull.ttfbMs),
        ratio: fmtRatio(s.ferry.ttfbMs / s.pull.ttfbMs),
        target: `<= ${TARGET}x`,
        met: s.ferry.ttfbMs / s.pull.ttfbMs <= TARGET,
      },
      {
        metric: `time to read 5% working set (${s.link})`,
        ferry: fmtMs(s.ferry.wsMs),
        baseline: fmtMs(s.pull.wsMs),
        ratio: fmtRatio(wsRatio),
        target: `<= ${TARGET}x`,
        met: wsRatio <= TARGET,
      },
      {
        metric: `bytes fetched (${s.link})`,
        ferry: fmtMB(s.ferry.mountBytes + s.ferry.readBytes),
        baseline: fmtMB(s.pull.bytes),
        ratio: fmtRatio((s.ferry.mountBytes + s.ferry.readBytes) / s.pull.bytes),
        target: minimumBytes > 0 ? `(least possible ${fmtMB(minimumBytes)})` : '',
      },
      {
        metric: `ferry mount RSS peak (${s.link})`,
        ferry: fmtRss(s.rssKb),
        baseline: '',
        ratio: '',
        target: '<= 150 MB',
        met: (s.rssKb * 1024) / 1e6 <= 150,
      },
    );
    notes.push(
      `${s.link}: ferry = mount ${fmtMs(s.ferry.mountMs)} (${fmtMB(s.ferry.mountBytes)}) + reads; ` +
        `baseline = pull ${fmtMs(s.pull.pullMs)}, all extracted at ${fmtMs(s.pull.totalMs)} ` +
        `(tar ${fmtMs(s.pull.extractMs)}) + reads`,
    );
  }
  emitResults('mount-vs-pull', rows, notes);
}

await main();
