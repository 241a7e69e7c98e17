// Deterministic benchmark data: fast text/random/mixed bytes, file trees written to disk, and gzip layers packed
// by GNU tar + gzip, kept in an on-disk cache (generation is the slowest part of a run, and it is not measured).
import { execFile } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { pseudoRandom } from '../../test/helpers/corpus.js';
import { MiB } from './report.js';

const run = promisify(execFile);

/** Bump when the generators change, so stale cache entries are not reused. */
const GEN_VERSION = 2;

export const cacheDir = (): string => process.env['FERRY_BENCH_CACHE'] ?? join(tmpdir(), 'ferry-bench-cache');

const WORDS = (
  'the of and to in is that for it as with was on be by this are from or an at not which have ' +
  'ferry chunk layer mount registry index zran node image blob digest manifest overlay cache fetch ' +
  'config start main init error warn info debug return value function module export import const'
)
  .split(' ')
  .map((w) => Buffer.from(w));

/** Compressible text-like bytes (≈3–4x with gzip), generated an order of magnitude faster than pseudoText. */
export function fastText(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ 0x5bd1e995) | 1; // distinct seeds, distinct streams
  let pos = 0;
  while (pos < size) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = x >>> 0;
    const w = WORDS[r % WORDS.length]!;
    for (let i = 0; i < w.length && pos < size; i++) out[pos++] = w[i]!;
    if ((r & 0x70) === 0 && pos < size) out[pos++] = 48 + ((r >>> 8) % 10);
    if (pos < size) out[pos++] = (r >>> 12) % 11 === 0 ? 10 : 32;
  }
  return out;
}

export type Content = 'text' | 'random' | 'mixed';

/** `mixed`: 64 KiB blocks, each random or text (about 60% random), like binaries with embedded strings. */
export function contentBytes(kind: Content, size: number, seed: number): Buffer {
  if (kind === 'text') return fastText(size, seed);
  if (kind === 'random') return pseudoRandom(size, seed);
  const out = Buffer.allocUnsafe(size);
  const block = 64 * 1024;
  for (let off = 0, b = 0; off < size; off += block, b++) {
    const n = Math.min(block, size - off);
    const h = Math.imul(seed ^ (b * 0x9e3779b1), 0x85ebca6b) >>> 0;
    const piece = h % 10 < 6 ? pseudoRandom(n, h | 1) : fastText(n, h | 1);
    piece.copy(out, off);
  }
  return out;
}

export interface FileSpec {
  path: string;
  size: number;
  content: Content;
  seed: number;
  mode?: number;
}

/** Writes the files under `root`, big ones in 8 MiB pieces so memory stays flat. */
export function writeTree(root: string, files: readonly FileSpec[]): void {
  for (const f of files) {
    const p = join(root, f.path);
    mkdirSync(dirname(p), { recursive: true });
    const fd = openSync(p, 'w', f.mode ?? 0o644);
    try {
      const piece = 8 * MiB;
      for (let off = 0; off < f.size; off += piece) {
        writeSync(fd, contentBytes(f.content, Math.min(piece, f.size - off), f.seed + off / piece));
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** Packs `dir` with GNU tar (reproducible: sorted, numeric owner 0, fixed mtime) and gzips it to `out`. */
export async function tarGzip(dir: string, out: string, level: number): Promise<void> {
  const script =
    'set -o pipefail; tar --format=pax --sort=name --numeric-owner --owner=0 --group=0 ' +
    '--mtime=2024-01-01T00:00:00Z -C "$1" -cf - . | gzip -n -"$2" > "$3"';
  await run('bash', ['-c', script, 'tar-gzip', dir, String(level), out], { maxBuffer: 1 << 20 });
}

/**
 * The path of a cached file named `key`, produced by `make(tmpPath)` when absent (or when `fresh`).
 * Writes go to a temp name and are renamed, so an interrupted run never leaves a half file behind.
 */
export async function cached(
  key: string,
  fresh: boolean,
  make: (tmpPath: string) => Promise<void>,
): Promise<{ path: string; hit: boolean }> {
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `v${GEN_VERSION}-${key}`);
  if (fresh) rmSync(path, { force: true });
  if (existsSync(path)) return { path, hit: true };
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await make(tmp);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { path, hit: false };
}

/** A cached gzip layer of the tree `files` (written to a scratch dir, packed, then the scratch dir removed). */
export async function cachedTreeLayer(
  key: string,
  fresh: boolean,
  files: () => FileSpec[],
  level: number,
): Promise<{ path: string; hit: boolean }> {
  return cached(`${key}-gz${level}.tar.gz`, fresh, async (tmp) => {
    const scratch = join(cacheDir(), `scratch-${key}-${process.pid}`);
    rmSync(scratch, { recursive: true, force: true });
    try {
      writeTree(scratch, files());
      await tarGzip(scratch, tmp, level);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
}

/** `count` small files (0–9000 bytes, one in three random) in directories of 200: a package-manager tree. */
export function smallFiles(prefix: string, count: number, seed: number): FileSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    path: smallFilePath(prefix, i),
    size: (i * 7919) % 9000,
    content: i % 3 === 0 ? ('random' as const) : ('text' as const),
    seed: seed + i,
    mode: i % 5 === 0 ? 0o755 : 0o644,
  }));
}

export const smallFilePath = (prefix: string, i: number): string =>
  `${prefix}/${String(Math.floor(i / 200)).padStart(3, '0')}/file-${i}.dat`;
