// Small text helpers for CLI output: sizes, rates, tables and a one-line terminal progress bar.

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]!}`;
}

export function formatRate(bytes: number, ms: number): string {
  return ms <= 0 ? '-' : `${(bytes / 1e6 / (ms / 1000)).toFixed(1)} MB/s`;
}

export function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Where a progress line goes: stderr, or a stand-in terminal in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** A progress line on stderr when it is a terminal; silent otherwise (logs and pipes stay clean). */
export class Progress {
  private readonly tty: boolean;
  private last = 0;

  constructor(private readonly out: ProgressStream = process.stderr) {
    this.tty = out.isTTY === true;
  }

  update(text: string, fraction?: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const width = 24;
    const bar =
      fraction === undefined
        ? ''
        : `[${'#'.repeat(Math.round(Math.min(1, fraction) * width)).padEnd(width, '.')}] ${(fraction * 100).toFixed(0).padStart(3)}% `;
    this.out.write(`\r\x1b[2K${bar}${text}`);
  }

  done(): void {
    if (this.tty) this.out.write('\r\x1b[2K');
  }
}
