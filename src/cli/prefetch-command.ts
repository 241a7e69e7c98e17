// `ferry prefetch <ref> --files <glob>…`: fetches every chunk of the named files (e.g. `*.safetensors`) into the
// node's chunk cache at demand priority, so a model is warm on disk before the workload that reads it starts.
import { InvalidArgumentError } from '../errors.js';
import { chunksCovering, type LayerIndex } from '../image/layer-index.js';
import { parseReference } from '../image/reference.js';
import { createContext } from '../node/context.js';
import { formatBytes, formatRate, Progress } from './format.js';

export interface PrefetchCommandOptions {
  files?: string[];
  concurrency?: number;
  json?: boolean;
  config?: string;
}

export interface SelectedFile {
  /** Position of the layer in the manifest (bottom first). */
  layer: number;
  path: string;
  size: number;
  chunks: number[];
}

/**
 * `*` and `?` within one path segment, `**` across segments, `[…]` classes. (Node 20's path.matchesGlob is
 * experimental and warns on stderr.)
 */
export function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        re += `[${glob
          .slice(i + 1, close)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += ch.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** A glob without `/` matches the base name anywhere (`*.safetensors`); with one, the whole layer path. */
function matches(path: string, glob: string): boolean {
  const g = glob.replace(/^\/+/, '');
  const target = g.includes('/') ? path : path.slice(path.lastIndexOf('/') + 1);
  return globRegExp(g).test(target);
}

/**
 * The regular files of the merged image matching any glob: the topmost layer's version of each path; a path a
 * higher layer replaced or whited out is skipped (opaque directories are not considered).
 */
export function selectFiles(indexes: readonly LayerIndex[], globs: readonly string[]): SelectedFile[] {
  const seen = new Set<string>();
  const out: SelectedFile[] = [];
  for (let layer = indexes.length - 1; layer >= 0; layer--) {
    const ix = indexes[layer]!;
    for (const e of ix.entries) {
      if (seen.has(e.path)) continue;
      seen.add(e.path);
      if (e.type !== 'file' || e.dataOffset === undefined || e.size === 0) continue;
      if (!globs.some((g) => matches(e.path, g))) continue;
      out.push({
        layer,
        path: e.path,
        size: e.size,
        chunks: chunksCovering(ix.chunks, e.dataOffset, e.size),
      });
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Runs `fetchOne` over `work` in `lanes` parallel lanes; returns the bytes fetched. On a terminal a progress
 * line shows chunks and bytes done (cleared at the end, also on failure).
 */
export async function fetchAll<T>(
  work: readonly T[],
  lanes: number,
  fetchOne: (item: T) => Promise<number>,
  progress: Progress,
): Promise<number> {
  let next = 0;
  let done = 0;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    for (let w = work[next++]; w !== undefined; w = work[next++]) {
      const n = await fetchOne(w); // not `bytes += await …`: that reads `bytes` before the other lanes add
      bytes += n;
      done++;
      progress.update(`${done}/${work.length} chunks, ${formatBytes(bytes)}`, done / work.length);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(lanes, work.length) }, worker));
  } finally {
    progress.done();
  }
  return bytes;
}

export async function runPrefetch(refText: string, opts: PrefetchCommandOptions): Promise<void> {
  const globs = opts.files ?? [];
  if (globs.length === 0)
    throw new InvalidArgumentError('ferry prefetch: name the files with --files <glob>');
  const ref = parseReference(refText);
  const ctx = await createContext({ configPath: opts.config, logLevel: 'warn' });
  const { config } = ctx;
  try {
    const image = await ctx.registry.resolve(ref);
    const indexes = (await ctx.provider.forImage(image)).map((p) => p.index);
    const files = selectFiles(indexes, globs);
    const chunks = await ctx.chunkService(); // peers first (when `[p2p] enabled`), registry after
    chunks.register(image.ref, indexes);
    const work: Array<{ index: LayerIndex; chunk: number }> = [];
    const planned = new Set<string>();
    for (const f of files) {
      const index = indexes[f.layer]!;
      for (const chunk of f.chunks) {
        const digest = index.chunks[chunk]!.digest;
        if (planned.has(digest)) continue;
        planned.add(digest);
        if (!(await ctx.chunks.has(digest))) work.push({ index, chunk });
      }
    }
    const t0 = performance.now();
    const bytes = await fetchAll(
      work,
      Math.max(1, opts.concurrency ?? config.registry.maxConcurrencyPerHost),
      async (w) => (await chunks.source.fetch({ index: w.index, chunk: w.chunk, priority: 'demand' })).length,
      new Progress(),
    );
    const ms = performance.now() - t0;
    const origin = chunks.stats().origin;
    const result = {
      event: 'prefetched',
      ref: ref.toString(),
      files: files.map((f) => ({ path: `/${f.path}`, size: f.size, chunks: f.chunks.length })),
      chunks: planned.size,
      alreadyCached: planned.size - work.length,
      fetchedChunks: work.length,
      fetchedBytes: bytes,
      originBytes: origin.bytes,
      ms: Math.round(ms),
    };
    if (opts.json === true) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      for (const f of result.files) process.stdout.write(`  ${f.path}  ${formatBytes(f.size)}\n`);
      process.stdout.write(
        `prefetched ${files.length} files: ${work.length} chunks (${formatBytes(bytes)}) fetched in ` +
          `${Math.round(ms)} ms (${formatRate(bytes, ms)}), ${result.alreadyCached} already cached\n`,
      );
    }
  } finally {
    await ctx.close();
  }
}
