// Benchmark: many concurrent readers over many mounted images (one `ferry mount` each, prefetch with a
// background full fetch on) for a fixed time: cached-read latency (O_DIRECT, so Ferry's path and not the page
// cache), read errors and byte mismatches (must be 0), and each mount process's RSS. test/integration/
// load-mounts.test.ts runs the small version in CI. Flags: --quick; --images N --readers N --seconds N.
import { runLoad } from '../test/load/load-run.js';
import { emitResults, parseArgs, say } from './lib/report.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

const { quick } = parseArgs();
const images = flag('images', quick ? 10 : 16);
const readers = flag('readers', quick ? 64 : 128);
const seconds = flag('seconds', quick ? 15 : 60);
say(`load: ${images} images, ${readers} readers, ${seconds} s`);
const r = await runLoad({
  images,
  readers,
  durationMs: seconds * 1000,
  smallFiles: quick ? 400 : 2000,
  bigFileBytes: (quick ? 2 : 8) << 20,
  background: 'all',
  log: say,
});
const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MiB`;
const sum = r.rssKb.reduce((a, b) => a + b, 0);
const failures =
  r.warm.errors.length + r.warm.mismatches.length + r.measure.errors.length + r.measure.mismatches.length;
emitResults(
  'load',
  [
    {
      metric: 'cached read p50',
      ferry: `${r.measure.p50Ms.toFixed(2)} ms`,
      baseline: '-',
      ratio: '-',
      target: '-',
    },
    {
      metric: 'cached read p99',
      ferry: `${r.measure.p99Ms.toFixed(2)} ms`,
      baseline: '-',
      ratio: '-',
      target: '< 50 ms',
      met: r.measure.p99Ms < 50,
    },
    {
      metric: 'cached read max',
      ferry: `${r.measure.maxMs.toFixed(1)} ms`,
      baseline: '-',
      ratio: '-',
      target: '-',
    },
    {
      metric: 'cached reads/s',
      ferry: (r.measure.reads / seconds).toFixed(0),
      baseline: '-',
      ratio: '-',
      target: '-',
    },
    {
      metric: 'first-read p99 (prefetch running)',
      ferry: `${r.warm.p99Ms.toFixed(1)} ms`,
      baseline: '-',
      ratio: '-',
      target: '-',
    },
    {
      metric: 'errors + mismatches',
      ferry: String(failures),
      baseline: '-',
      ratio: '-',
      target: '0',
      met: failures === 0,
    },
    {
      metric: 'RSS per mount (max)',
      ferry: mb(Math.max(...r.rssKb)),
      baseline: '-',
      ratio: '-',
      target: '-',
    },
    { metric: `RSS sum (${images} mounts)`, ferry: mb(sum), baseline: '-', ratio: '-', target: '-' },
  ],
  [
    `O_DIRECT: ${r.direct}`,
    `wall ${Math.round(r.wallMs / 1000)} s`,
    ...r.measure.errors.slice(0, 3),
    ...r.measure.mismatches.slice(0, 3),
  ],
);
if (failures > 0) process.exitCode = 1;
