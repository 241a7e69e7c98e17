// Startup traces: what one image start read (Trace) and the merged, persisted form (MergedTrace), with the
// schema that checks a trace file or registry blob before it is trusted.
import { z } from 'zod';
import { FormatError } from '../errors.js';
import { isDigest, type Digest } from '../image/digest.js';

export const TRACE_VERSION = 1;

/** One chunk in a trace: where it lives and when a start first read it. */
export interface TraceEntry {
  readonly layerDigest: Digest;
  readonly chunkDigest: Digest;
  readonly chunkIndex: number;
  readonly size: number;
  /** Milliseconds after the start's first read (a typical value in a merged trace). */
  readonly firstAccessMs: number;
}

/** What one startup read, in first-access order. */
export interface Trace {
  readonly version: typeof TRACE_VERSION;
  readonly manifestDigest: Digest;
  readonly workloadKey?: string;
  readonly recordedAt: string;
  /** How long the recording window ran (first read to close). */
  readonly durationMs: number;
  readonly entries: readonly TraceEntry[];
}

export interface MergedTraceEntry extends TraceEntry {
  /** Startups that read this chunk. */
  readonly seen: number;
  /** Exponentially weighted frequency of appearance in (0, 1]: recent startups count most. */
  readonly weight: number;
}

/** Traces of several startups merged; entries in prefetch order. */
export interface MergedTrace {
  readonly version: typeof TRACE_VERSION;
  readonly manifestDigest: Digest;
  readonly workloadKey?: string;
  readonly startups: number;
  readonly updatedAt: string;
  readonly entries: readonly MergedTraceEntry[];
}

const n = z.number().int().nonnegative();
const digest = z.string().refine(isDigest, 'not a digest');

const mergedSchema = z.object({
  version: z.literal(TRACE_VERSION),
  manifestDigest: digest,
  workloadKey: z.string().optional(),
  startups: n,
  updatedAt: z.string(),
  entries: z.array(
    z.object({
      layerDigest: digest,
      chunkDigest: digest,
      chunkIndex: n,
      size: n,
      firstAccessMs: z.number().nonnegative(),
      seen: n,
      weight: z.number().positive().max(1),
    }),
  ),
});

/** Parses and checks a serialized MergedTrace; `what` names the file or blob in the error. */
export function parseMergedTrace(bytes: Buffer, what: string): MergedTrace {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new FormatError(`${what}: trace is not JSON`, { cause: e });
  }
  const r = mergedSchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new FormatError(`${what}: bad trace (${first?.path.join('.') ?? ''}: ${first?.message ?? '?'})`);
  }
  const d = r.data;
  return {
    version: TRACE_VERSION,
    manifestDigest: d.manifestDigest,
    ...(d.workloadKey !== undefined ? { workloadKey: d.workloadKey } : {}),
    startups: d.startups,
    updatedAt: d.updatedAt,
    entries: d.entries,
  };
}

export function serializeMergedTrace(trace: MergedTrace): Buffer {
  return Buffer.from(JSON.stringify(trace));
}

/** Total bytes of a trace's chunks. */
export function traceBytes(entries: readonly TraceEntry[]): number {
  let sum = 0;
  for (const e of entries) sum += e.size;
  return sum;
}
