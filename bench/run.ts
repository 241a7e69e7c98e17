// `npm run bench`: runs every benchmark in sequence, each in its own process (so one's memory and mounts never
// colour the next), echoes their output, and ends with one summary table of all figures.
// Flags: --quick (smaller sizes), --no-cache (regenerate test data), --only a,b / --skip a,b (by file name).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { makeTempRoot, removeTempRoot } from '../test/helpers/temp-root.js';
import { cacheDir } from './lib/gen.js';
import {
  elapsed,
  fmtMs,
  parseArgs,
  RESULT_HEADERS,
  RESULT_TAG,
  rowCells,
  say,
  table,
  type ResultRow,
} from './lib/report.js';

/** Run order of the benchmarks this runner knows; any other bench/*.ts found is run after them, by name. */
const ORDER = [
  'index-throughput',
  'random-reads',
  'decode',
  'stat-tree',
  'seq-read',
  'fuse-engines',
  'mount-vs-pull',
  'cold-start',
  'daemon-rss',
  'prefetch',
];
/** Ours take --quick/--no-cache; other benchmarks (decode, prefetch, …) run with their own defaults. */
const TAKES_FLAGS = new Set([
  'index-throughput',
  'random-reads',
  'stat-tree',
  'seq-read',
  'fuse-engines',
  'mount-vs-pull',
  'cold-start',
  'daemon-rss',
]);

function discover(): string[] {
  const found = readdirSync(import.meta.dirname)
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_') && !f.startsWith('.') && f !== 'run.ts')
    .map((f) => f.slice(0, -3));
  const known = ORDER.filter((n) => found.includes(n));
  return [...known, ...found.filter((n) => !ORDER.includes(n)).sort()];
}

interface BenchOutcome {
  bench: string;
  code: number | null;
  ms: number;
  rows: ResultRow[];
  notes: string[];
}

function runOne(name: string, flags: readonly string[]): Promise<BenchOutcome> {
  const file = resolve(import.meta.dirname, `${name}.ts`);
  const t0 = performance.now();
  const outcome: BenchOutcome = { bench: name, code: null, ms: 0, rows: [], notes: [] };
  // Nodes, images and registries a benchmark makes live in its own TMPDIR, removed when it ends (the generated
  // data cache stays where it was).
  const tmp = makeTempRoot(`ferry-bench-${name}-`);
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx/esm', file, ...flags], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TMPDIR: tmp, FERRY_BENCH_CACHE: cacheDir() },
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith(RESULT_TAG)) {
        const r = JSON.parse(line.slice(RESULT_TAG.length)) as { rows?: ResultRow[]; notes?: string[] };
        outcome.rows.push(...(r.rows ?? []));
        outcome.notes.push(...(r.notes ?? []));
      } else say(line);
    });
    child.on('exit', (code) => {
      const mounted = removeTempRoot(tmp);
      if (mounted.length > 0)
        say(`${name}: temp dir ${tmp} kept: still mounted under it: ${mounted.join(', ')}`);
      outcome.code = code;
      outcome.ms = elapsed(t0);
      done(outcome);
    });
  });
}

const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** Parses "228 MB" back into megabytes, for the overall RSS row. */
const mb = (s: string): number => Number(/^([\d.]+) MB$/.exec(s)?.[1] ?? Number.NaN);

async function main(): Promise<void> {
  const args = parseArgs();
  const argv = process.argv.slice(2);
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : undefined;
  const skipAt = argv.indexOf('--skip');
  const skip = skipAt >= 0 ? (argv[skipAt + 1] ?? '').split(',') : [];
  const flags = [...(args.quick ? ['--quick'] : []), ...(args.noCache ? ['--no-cache'] : [])];
  const t0 = performance.now();
  const startLoad = loadavg();
  const outcomes: BenchOutcome[] = [];
  for (const name of discover()) {
    if (only !== undefined && !only.includes(name)) continue;
    if (skip.includes(name)) continue;
    const own = TAKES_FLAGS.has(name) ? flags : [];
    say(`\n======== bench/${name}.ts ${own.join(' ')} ========`);
    const o = await runOne(name, own);
    outcomes.push(o);
    say(`======== ${name}: ${o.code === 0 ? 'done' : `FAILED (exit ${o.code})`} in ${fmtMs(o.ms)} ========`);
  }

  const rows = outcomes.flatMap((o) => o.rows);
  const rss = rows.filter((r) => /RSS peak/.test(r.metric) && !Number.isNaN(mb(r.ferry)));
  if (rss.length > 0) {
    const peak = Math.max(...rss.map((r) => mb(r.ferry)));
    rows.push({
      metric: 'ferry mount RSS, peak over seq-read',
      ferry: `${peak.toFixed(0)} MB`,
      baseline: '',
      ratio: '',
      target: '<= 150 MB',
      met: peak <= 150,
    });
  }
  say(`\n================ summary${args.quick ? ' (--quick sizes)' : ''} ================`);
  say(table(RESULT_HEADERS, rows.map(rowCells)));
  for (const o of outcomes) for (const n of o.notes) say(`note [${o.bench}]: ${n}`);
  for (const o of outcomes)
    say(`${o.bench}: ${o.code === 0 ? 'ok' : `FAILED (exit ${o.code})`}, ${fmtMs(o.ms)}`);
  say(
    `total ${fmtMs(elapsed(t0))}; load average ${startLoad} at start, ${loadavg()} at end ` +
      '(2 shared cores: other work on the machine makes every figure noisy)',
  );
  if (outcomes.some((o) => o.code !== 0)) process.exitCode = 1;
}

await main();
