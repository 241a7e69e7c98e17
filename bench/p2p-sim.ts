// Discrete-event simulation of Ferry's P2P chunk sharing at 1..1,000 nodes: the real rendezvous placement,
// PeerFirstSource (owner order, hedging, registry fallback, marking peers down) and Dedupe/Limit/Verify stack,
// on a simulated clock and network (bench/lib/sim-*.ts). Prints registry egress and p50/p99 time-to-working-set
// vs N, with and without churn, and the N = 1..8 figures next to the namespace run of bench/p2p.ts.
// Run: npx tsx bench/p2p-sim.ts [--quick] [--chunks 200] [--chunks-big 50] [--node-mbit 10000] [--churn 0.05]
import {
  DEFAULT_SCENARIO,
  runScenario,
  type ScenarioOptions,
  type ScenarioResult,
} from './lib/sim-cluster.js';

const flag = (name: string): boolean => process.argv.includes(`--${name}`);
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

const QUICK = flag('quick');
const CHUNKS = arg('chunks', QUICK ? 24 : 200);
/** N at or above this use CHUNKS_BIG chunks: owners() is linear in peers, so N × chunks × N hashes. */
const BIG_N = 1000;
const CHUNKS_BIG = arg('chunks-big', 50);
const CHURN = arg('churn', 0.05);
const sizesArg = process.argv[process.argv.indexOf('--sizes') + 1];
const SIZES = process.argv.includes('--sizes')
  ? (sizesArg ?? '').split(',').map(Number)
  : QUICK
    ? [1, 2, 4, 8, 16, 64]
    : [1, 2, 4, 8, 16, 64, 256, 1000];
/**
 * CPU per received MiB for the host-CPU row (--cpu-ms-per-mib; 0, the default, leaves the row out). No value is
 * fitted to a real run here: bench/p2p.ts measures the real cluster, in its own run.
 */
const CPU_MS_PER_MIB = arg('cpu-ms-per-mib', 0);
const base: ScenarioOptions = {
  ...DEFAULT_SCENARIO,
  chunkBytes: arg('chunk-mib', 1) * 2 ** 20,
  registryMbit: arg('registry-mbit', 200),
  nodeMbit: arg('node-mbit', 10_000),
  latencyMs: arg('latency-ms', 0.1),
  readers: arg('readers', 8),
  seed: arg('seed', 1),
};

/** The cluster sizes bench/p2p.ts runs for real (24 files × 1 MiB, 200 Mbit/s registry link). */
const VALIDATION_SIZES = [1, 2, 4, 8];

const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
const sec = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '-');
const pad = (s: string | number, w: number): string => String(s).padStart(w);

async function validation(): Promise<void> {
  // The scenario of bench/p2p.ts: sha256sum reads the files one after the other, so one chunk in flight per node.
  // Its real figures come from running it (npm run bench -- --only p2p,p2p-sim puts both in one run).
  const valid = { ...base, chunks: 24, readers: 1 };
  const rows: ScenarioResult[] = [];
  const cpuRows: ScenarioResult[] = [];
  for (const n of VALIDATION_SIZES) {
    rows.push(await runScenario({ ...valid, nodes: n }));
    if (CPU_MS_PER_MIB > 0)
      cpuRows.push(await runScenario({ ...valid, nodes: n, cpuMsPerMiB: CPU_MS_PER_MIB, hostCores: 2 }));
  }
  const t1 = rows[0]!.maxMs;
  const c1 = cpuRows[0]?.maxMs ?? Number.NaN;
  console.log('\nThe scenario of bench/p2p.ts (24 × 1 MiB, one reader per node), simulated');
  if (CPU_MS_PER_MIB > 0)
    console.log(`  +CPU: ${CPU_MS_PER_MIB} ms of CPU per MiB a node receives, all nodes sharing 2 cores`);
  console.log(`  N   egress   time (max)   vs N=1${CPU_MS_PER_MIB > 0 ? '   +CPU vs N=1' : ''}`);
  rows.forEach((s, i) => {
    const c = cpuRows[i];
    console.log(
      `  ${VALIDATION_SIZES[i]}   ${pad(f2(s.egress), 6)}   ${pad(sec(s.maxMs), 8)} s   ${pad(f2(s.maxMs / t1), 6)}` +
        (c !== undefined ? `   ${pad(f2(c.maxMs / c1), 11)}` : ''),
    );
  });
}

async function scale(): Promise<void> {
  console.log(
    `\nScale: every node reads the working set at once (${base.readers} readers per node); ` +
      `churn = ${Math.round(CHURN * 100)}% of nodes replaced (at least 1) at random times within the no-churn p50`,
  );
  console.log(
    '                          no churn                                  |  with churn',
    '\n      N  chunks  egress   p50 s   p99 s  p99 vs N=1  hedges  peerFail |  repl  egress   p50 s   p99 s  done      cpu s',
  );
  const baselines = new Map<number, ScenarioResult>();
  for (const n of SIZES) {
    const chunks = n >= BIG_N ? CHUNKS_BIG : CHUNKS;
    const one = baselines.get(chunks) ?? (await runScenario({ ...base, nodes: 1, chunks }));
    baselines.set(chunks, one);
    const r = await runScenario({ ...base, nodes: n, chunks });
    const c =
      n >= 2
        ? await runScenario({ ...base, nodes: n, chunks, churnFraction: CHURN, churnWindowMs: r.p50Ms })
        : undefined;
    console.log(
      `  ${pad(n, 5)}  ${pad(chunks, 6)}  ${pad(f2(r.egress), 6)}  ${pad(sec(r.p50Ms), 6)}  ${pad(sec(r.p99Ms), 6)}` +
        `  ${pad(f2(r.p99Ms / one.p99Ms), 10)}  ${pad(r.hedges, 6)}  ${pad(r.peerFailures, 8)} |` +
        (c === undefined
          ? `     -       -       -       -     -`
          : `  ${pad(c.replaced, 4)}  ${pad(f2(c.egress), 6)}  ${pad(sec(c.p50Ms), 6)}  ${pad(sec(c.p99Ms), 6)}  ${pad(`${c.completed}/${c.present}`, 9)}`) +
        `  ${pad(((r.cpuMs + (c?.cpuMs ?? 0)) / 1000).toFixed(1), 7)}`,
    );
  }
  if (SIZES.some((n) => n >= BIG_N) && CHUNKS_BIG !== CHUNKS)
    console.log(
      `  (N ≥ ${BIG_N} uses ${CHUNKS_BIG} chunks to keep the run short; its "vs N=1" is against N=1 with as many)`,
    );
}

const t0 = performance.now();
console.log(
  `P2P simulation — real rendezvous + PeerFirstSource + Dedupe/Limit/Verify on simulated time and links\n` +
    `links: registry ${base.registryMbit} Mbit/s up; nodes ${base.nodeMbit} Mbit/s up and down; ${base.latencyMs} ms per hop; ` +
    `chunks of ${base.chunkBytes / 2 ** 20} MiB; ownerCount ${base.ownerCount}, hedge ${base.hedgeAfterMs} ms, ` +
    `peers notice a departure after a probe: U(0, ${base.probeIntervalMs}) + ${base.probeTimeoutMs} ms`,
);
await validation();
await scale();
console.log(`\n(${((performance.now() - t0) / 1000).toFixed(1)} s wall)`);
