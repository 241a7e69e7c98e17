// Decode benchmark: 32 chunks of a generated gzip layer decoded and verified on the main thread (pako as before,
// then node zlib with pako fallback) and through the worker pool; prints time, MB/s and event-loop stall side by
// side. Run: npx tsx bench/decode.ts [--workers N] [--mib 48] [--level 6] [--rounds 5]
// [--index build|spans]
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { chunkJob, verifyChunk, type ChunkJob } from '../src/codec/chunk-job.js';
import { decodeJob, type DecodeEngine } from '../src/codec/decode-chunk.js';
import { DecodePool } from '../src/codec/worker-pool.js';
import { GzipIndexer } from '../src/codec/gzip-indexer.js';
import type { Chunk, LayerIndex } from '../src/image/layer-index.js';
import { sha256 } from '../src/image/digest.js';
import { makeGzipLayer } from '../test/codec/gzip-layer.js';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string' },
    mib: { type: 'string', default: '48' },
    level: { type: 'string', default: '6' },
    chunks: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    // build: the index build-stream makes; spans: 1 MiB chunks over plain 2 MiB zran spans (skip up to 2 MiB)
    index: { type: 'string', default: 'build' },
  },
});

interface Result {
  name: string;
  ms: number;
  mbPerS: number;
  lagMaxMs: number;
  p99Ms: number;
  /** Time the event loop spent running code (eventLoopUtilization().active): immune to CPU contention. */
  busyMs: number;
}

/** Runs `work` while a 1 ms interval timer and monitorEventLoopDelay watch the event loop. */
async function measure(name: string, bytes: number, work: () => Promise<void>): Promise<Result> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let lagMax = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lagMax = Math.max(lagMax, now - last - 1);
    last = now;
  }, 1);
  await sleep(30);
  h.enable();
  lagMax = 0;
  const started = performance.now();
  const elu = performance.eventLoopUtilization();
  await work();
  const ms = performance.now() - started;
  const busyMs = performance.eventLoopUtilization(elu).active;
  await sleep(10);
  h.disable();
  clearInterval(timer);
  return {
    name,
    ms,
    mbPerS: bytes / 1e6 / (ms / 1000),
    lagMaxMs: lagMax,
    p99Ms: h.percentile(99) / 1e6,
    busyMs,
  };
}

const t0 = performance.now();
const layer = await makeGzipLayer({
  totalBytes: Number(args.mib) * 1024 * 1024,
  compression: Number(args.level),
});
const index = args.index === 'spans' ? spanIndex(layer.index, layer.gz) : layer.index;
const picked = index.chunks
  .map((c, i) => ({ c, i }))
  .filter(({ c }) => c.size >= 256 * 1024)
  .slice(0, Number(args.chunks));
const jobs: ChunkJob[] = picked.map(({ i }) => chunkJob(index, i));
const spans = picked.map(({ c }) => Buffer.from(layer.gz.subarray(c.compressedStart, c.compressedEnd)));
const bytes = picked.reduce((n, { c }) => n + c.size, 0);
const bitOffset = picked.filter(({ c }) => {
  const cp = index.checkpoints[c.checkpoint]!;
  return !cp.memberStart && cp.bits !== 0;
}).length;
const meanSkip = picked.reduce((n, { c }) => n + c.skip, 0) / picked.length;
console.log(
  `layer: ${(layer.tar.length / 2 ** 20).toFixed(1)} MiB tar → ${(layer.gz.length / 2 ** 20).toFixed(1)} MiB gzip -${args.level}, ` +
    `${index.chunks.length} chunks, ${index.checkpoints.length} checkpoints, index '${args.index}' (built in ${(performance.now() - t0).toFixed(0)} ms)`,
);
console.log(
  `decoding ${picked.length} chunks, ${(bytes / 2 ** 20).toFixed(1)} MiB, mean skip ${(meanSkip / 2 ** 20).toFixed(2)} MiB, ` +
    `${bitOffset} start at a bit offset (bits ≠ 0)\n`,
);

/** One chunk per macrotask, as independent FUSE reads would run. */
const mainThread = (engine: DecodeEngine) => async (): Promise<void> => {
  for (let k = 0; k < jobs.length; k++) {
    verifyChunk(jobs[k]!, decodeJob(jobs[k]!, spans[k]!, engine));
    await nextTurn();
  }
};

// Scenarios run interleaved for `rounds` rounds (the machine is shared); each row is its median-time round.
const pools = new Map<number, DecodePool>();
const defaultWorkers = args.workers !== undefined ? Number(args.workers) : new DecodePool().size;
for (const n of new Set([1, defaultWorkers]))
  pools.set(n, new DecodePool({ workers: n, inlineBelowBytes: 0 }));
const scenarios: Array<[string, () => Promise<void>]> = [
  ['main thread, pako (before)', mainThread('pako')],
  ['main thread, zlib (auto)', mainThread('auto')],
  ...[...pools].map(([n, pool]): [string, () => Promise<void>] => [
    `pool, ${n} worker${n > 1 ? 's' : ''}`,
    async () => {
      await Promise.all(jobs.map((j, k) => pool.decodeAndVerify(j, spans[k]!)));
    },
  ]),
];
for (const [, run] of scenarios) await run(); // warm-up: JIT, worker start-up
const runs = new Map<string, Result[]>();
for (let round = 0; round < Number(args.rounds); round++) {
  for (const [name, run] of scenarios) {
    const r = await measure(name, bytes, run);
    runs.set(name, [...(runs.get(name) ?? []), r]);
  }
}
for (const pool of pools.values()) await pool.close();
const results = [...runs.values()].map((rs) => [...rs].sort((a, b) => a.ms - b.ms)[rs.length >> 1]!);

const base = results[0]!;
const pad = (s: string, n: number): string => s.padEnd(n);
console.log(
  `${pad('run', 30)}${pad('ms', 9)}${pad('MB/s', 9)}${pad('× MB/s', 9)}${pad('lag max ms', 12)}${pad('p99 ms', 9)}${pad('× stall', 9)}loop busy ms`,
);
for (const r of results) {
  console.log(
    pad(r.name, 30) +
      pad(r.ms.toFixed(0), 9) +
      pad(r.mbPerS.toFixed(1), 9) +
      pad((r.mbPerS / base.mbPerS).toFixed(2), 9) +
      pad(r.lagMaxMs.toFixed(1), 12) +
      pad(r.p99Ms.toFixed(1), 9) +
      pad((r.lagMaxMs / base.lagMaxMs).toFixed(3), 9) +
      r.busyMs.toFixed(0),
  );
}

/** The layer re-indexed with checkpoints only every 2 MiB and a 1 MiB chunk at every MiB. */
function spanIndex(built: LayerIndex, gz: Buffer): LayerIndex {
  const ix = new GzipIndexer({ spanBytes: 2 * 1024 * 1024 });
  const parts: Buffer[] = [];
  ix.push(gz, (o) => parts.push(Buffer.from(o)));
  ix.finish();
  const plain = Buffer.concat(parts);
  const cps = ix.checkpoints;
  const chunks: Chunk[] = [];
  for (let offset = 0; offset + 1024 * 1024 <= plain.length; offset += 1024 * 1024) {
    const size = 1024 * 1024;
    let at = 0;
    while (at + 1 < cps.length && cps[at + 1]!.uncompressedOffset <= offset) at++;
    const cp = cps[at]!;
    const after = cps.find((c) => c.uncompressedOffset >= offset + size);
    chunks.push({
      digest: sha256(plain.subarray(offset, offset + size)),
      offset,
      size,
      compressedStart: cp.memberStart || cp.bits === 0 ? cp.compressedOffset : cp.compressedOffset - 1,
      compressedEnd: after !== undefined ? Math.min(gz.length, after.compressedOffset + 64) : gz.length,
      checkpoint: at,
      skip: offset - cp.uncompressedOffset,
    });
  }
  return { ...built, chunks, checkpoints: cps, windows: ix.windows };
}
