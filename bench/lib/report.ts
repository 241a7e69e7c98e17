// Benchmark output: command-line flags, number formatting, percentiles, and the result rows each benchmark
// prints (a table for people, one `@@bench-result` JSON line that bench/run.ts collects for its summary).

export interface BenchArgs {
  /** Smaller sizes, for a quick look (figures are not comparable with a full run). */
  quick: boolean;
  /** Regenerate test data instead of reusing the on-disk data cache. */
  noCache: boolean;
}

export function parseArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  return { quick: argv.includes('--quick'), noCache: argv.includes('--no-cache') };
}

export interface ResultRow {
  metric: string;
  ferry: string;
  baseline: string;
  /** ferry / baseline (or as the metric defines it), formatted. */
  ratio: string;
  target: string;
  /** Whether the figure meets its target; informational only, never asserted. */
  met?: boolean | undefined;
}

export const RESULT_TAG = '@@bench-result ';

export const say = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

export const MB = 1e6;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const fmtMB = (bytes: number): string => `${(bytes / MB).toFixed(1)} MB`;
export const fmtMs = (ms: number): string =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`;
export const fmtRate = (bytes: number, ms: number): string =>
  ms > 0 ? `${(bytes / MB / (ms / 1000)).toFixed(1)} MB/s` : 'n/a';
export const fmtGBps = (bytes: number, ms: number): string =>
  ms > 0 ? `${(bytes / 1e9 / (ms / 1000)).toFixed(2)} GB/s` : 'n/a';
export const fmtRatio = (r: number): string => (Number.isFinite(r) ? `${r.toFixed(3)}x` : 'n/a');

export const elapsed = (t0: number): number => performance.now() - t0;

/** Nearest-rank percentile of `values` (0 < p ≤ 100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function rowCells(r: ResultRow): string[] {
  const mark = r.met === undefined ? '' : r.met ? ' (met)' : ' (NOT met)';
  return [r.metric, r.ferry, r.baseline, r.ratio, `${r.target}${r.target === '' ? '' : mark}`];
}

export const RESULT_HEADERS = ['metric', 'ferry', 'baseline', 'ratio', 'target'] as const;

/** Prints the benchmark's result table and the machine-readable line for bench/run.ts. */
export function emitResults(bench: string, rows: readonly ResultRow[], notes: readonly string[] = []): void {
  say(`\n== ${bench}: results ==`);
  say(table(RESULT_HEADERS, rows.map(rowCells)));
  for (const n of notes) say(`note: ${n}`);
  say(`${RESULT_TAG}${JSON.stringify({ bench, rows, notes })}`);
}
