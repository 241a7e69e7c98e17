// `ferry trace show|push|pull <ref>`: inspect the startup trace of an image (files, bytes, timeline), and
// share it through the registry as an OCI artifact referring to the image.
import { NotFoundError } from '../errors.js';
import { parseReference } from '../image/reference.js';
import { findTrace } from '../prefetch/image-prefetch.js';
import { traceFiles } from '../prefetch/trace-files.js';
import { pullTrace, pushTrace } from '../prefetch/trace-registry.js';
import { TraceStore } from '../prefetch/trace-store.js';
import { traceBytes } from '../prefetch/trace.js';
import { createContext, type NodeContext } from '../node/context.js';
import { formatBytes, shortDigest, table } from './format.js';

export interface TraceCommandOptions {
  json?: boolean;
  config?: string;
  workload?: string;
}

const cliLogLevel = (): string => process.env['FERRY_LOG_LEVEL'] ?? 'warn';
const TIMELINE_BUCKETS = 10;
const FILES_SHOWN = 20;

async function withTraces<T>(
  opts: TraceCommandOptions,
  run: (ctx: NodeContext, traces: TraceStore) => Promise<T>,
): Promise<T> {
  const ctx = await createContext({ configPath: opts.config, logLevel: cliLogLevel() });
  try {
    const traces = new TraceStore({
      dir: ctx.config.paths.tracesDir,
      merge: { maxEntries: ctx.config.prefetch.maxTraceChunks },
      log: ctx.log,
    });
    return await run(ctx, traces);
  } finally {
    await ctx.close();
  }
}

export async function runTraceShow(refText: string, opts: TraceCommandOptions): Promise<void> {
  const ref = parseReference(refText);
  await withTraces(opts, async (ctx, traces) => {
    const image = await ctx.registry.resolve(ref);
    const found = await findTrace({
      image,
      traces,
      registry: ctx.registry,
      workloadKey: opts.workload,
      log: ctx.log,
    });
    if (found === undefined)
      throw new NotFoundError(`no trace for ${ref.toString()} (locally or in the registry)`);
    const { trace } = found;
    const indexes = (await ctx.provider.forImage(image)).map((p) => p.index);
    const mapped = traceFiles(trace.entries, indexes);
    const bytes = traceBytes(trace.entries);
    const spanMs = trace.entries.reduce((m, e) => Math.max(m, e.firstAccessMs), 0);
    if (opts.json === true) {
      process.stdout.write(
        `${JSON.stringify({
          ref: ref.toString(),
          manifestDigest: trace.manifestDigest,
          workloadKey: trace.workloadKey,
          origin: found.origin,
          startups: trace.startups,
          updatedAt: trace.updatedAt,
          chunks: trace.entries.length,
          bytes,
          spanMs,
          files: mapped.files,
          timeline: mapped.timeline.map((t) => ({ ...t.entry, files: t.files })),
        })}\n`,
      );
      return;
    }
    const lines = [
      `trace of ${ref.toString()} (${shortDigest(trace.manifestDigest)}, ${found.origin})` +
        (trace.workloadKey !== undefined ? ` workload ${trace.workloadKey}` : ''),
      `  ${trace.startups} startup(s), ${trace.entries.length} chunks, ${formatBytes(bytes)}, ` +
        `${mapped.files.length} files, first ${(spanMs / 1000).toFixed(2)} s of reads`,
      '',
      'timeline:',
      ...timeline(trace.entries, spanMs),
      '',
      `first files read${mapped.files.length > FILES_SHOWN ? ` (${FILES_SHOWN} of ${mapped.files.length})` : ''}:`,
      table(
        ['ms', 'layer', 'size', 'path'],
        mapped.files
          .slice(0, FILES_SHOWN)
          .map((f) => [f.firstAccessMs.toFixed(0), shortDigest(f.layerDigest), formatBytes(f.size), f.path]),
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}

function timeline(entries: readonly { firstAccessMs: number; size: number }[], spanMs: number): string[] {
  const width = Math.max(1, spanMs) / TIMELINE_BUCKETS;
  const buckets = Array.from({ length: TIMELINE_BUCKETS }, () => ({ chunks: 0, bytes: 0 }));
  for (const e of entries) {
    const b = buckets[Math.min(TIMELINE_BUCKETS - 1, Math.floor(e.firstAccessMs / width))]!;
    b.chunks++;
    b.bytes += e.size;
  }
  const most = Math.max(1, ...buckets.map((b) => b.bytes));
  return buckets.map((b, i) => {
    const from = ((i * width) / 1000).toFixed(2).padStart(7);
    const bar = '#'.repeat(Math.round((b.bytes / most) * 30)).padEnd(30);
    return `  ${from} s  ${bar}  ${String(b.chunks).padStart(5)} chunks  ${formatBytes(b.bytes)}`;
  });
}

export async function runTracePush(refText: string, opts: TraceCommandOptions): Promise<void> {
  const ref = parseReference(refText);
  await withTraces(opts, async (ctx, traces) => {
    const image = await ctx.registry.resolve(ref);
    const trace = await traces.get(image.manifestDigest, opts.workload);
    if (trace === undefined) {
      throw new NotFoundError(`no local trace for ${ref.toString()}: mount and start it first`);
    }
    const digest = await pushTrace(ctx.registry, image, trace);
    if (opts.json === true) {
      process.stdout.write(
        `${JSON.stringify({ ref: ref.toString(), artifact: digest, chunks: trace.entries.length })}\n`,
      );
    } else {
      process.stdout.write(
        `pushed trace of ${ref.toString()} (${trace.entries.length} chunks) as ${digest}\n`,
      );
    }
  });
}

export async function runTracePull(refText: string, opts: TraceCommandOptions): Promise<void> {
  const ref = parseReference(refText);
  await withTraces(opts, async (ctx, traces) => {
    const image = await ctx.registry.resolve(ref);
    const trace = await pullTrace(ctx.registry, image, ctx.log, opts.workload);
    if (trace === undefined) throw new NotFoundError(`no trace published for ${ref.toString()}`);
    await traces.put(trace);
    if (opts.json === true) {
      process.stdout.write(
        `${JSON.stringify({ ref: ref.toString(), chunks: trace.entries.length, startups: trace.startups })}\n`,
      );
    } else {
      process.stdout.write(
        `pulled trace of ${ref.toString()}: ${trace.entries.length} chunks, ${trace.startups} startup(s)\n`,
      );
    }
  });
}
