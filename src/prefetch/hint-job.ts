// The prefetch-hint job model: what a hint asks for (HintSpec), what Watch/List report (HintProgress), and the
// contract between the job queue and the work itself (HintRunner), so the queue can be tested with fakes.
import { InvalidArgumentError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { parseReference } from '../image/reference.js';

export type HintPhase = 'QUEUED' | 'RESOLVING' | 'INDEXING' | 'FETCHING' | 'DONE' | 'FAILED' | 'CANCELLED';

export const FINAL_PHASES: ReadonlySet<HintPhase> = new Set(['DONE', 'FAILED', 'CANCELLED']);

export interface HintSpec {
  /** As the caller wrote it; the queue normalizes it. */
  imageRef: string;
  /** Higher runs sooner; ties in arrival order. */
  priority: number;
  /** Unix ms; undefined = no deadline. */
  deadlineUnixMs?: number | undefined;
  /** Trace/default chunk bytes at most; undefined = the node's budget. */
  budgetBytes?: number | undefined;
  workloadKey?: string | undefined;
}

export interface ChunkProgress {
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
  chunksCached: number;
  chunksFailed: number;
}

export interface HintProgress extends ChunkProgress {
  jobId: string;
  imageRef: string;
  manifestDigest?: Digest;
  phase: HintPhase;
  priority: number;
  /** 'local' | 'registry' | 'none', once the plan exists. */
  traceOrigin?: string;
  errorCode?: string;
  error?: string;
  /** Hints that joined this job. */
  hints: number;
  createdUnixMs: number;
  finishedUnixMs?: number;
  deadlineUnixMs?: number;
  workloadKey?: string;
}

/** What a running job may tell the queue; every call is cheap and never throws. */
export interface HintRun {
  readonly jobId: string;
  /** The spec as of the job's start (budget and deadline may have grown while it was queued). */
  readonly spec: Readonly<HintSpec>;
  /** Aborted on cancel or deadline; its reason says which. */
  readonly signal: AbortSignal;
  phase(p: 'RESOLVING' | 'INDEXING' | 'FETCHING'): void;
  resolved(manifestDigest: Digest): void;
  planned(traceOrigin: string, totals: { chunks: number; bytes: number }): void;
  progress(p: ChunkProgress): void;
}

/** Does one job's work; resolves when done, rejects with a FerryError when the job fails. */
export type HintRunner = (run: HintRun) => Promise<void>;

export function emptyProgress(): ChunkProgress {
  return { chunksDone: 0, chunksTotal: 0, bytesDone: 0, bytesTotal: 0, chunksCached: 0, chunksFailed: 0 };
}

export function queuedProgress(jobId: string, s: HintSpec, nowMs: number): HintProgress {
  return {
    jobId,
    imageRef: s.imageRef,
    phase: 'QUEUED',
    priority: s.priority,
    ...emptyProgress(),
    hints: 1,
    createdUnixMs: nowMs,
    ...(s.deadlineUnixMs !== undefined ? { deadlineUnixMs: s.deadlineUnixMs } : {}),
    ...(s.workloadKey !== undefined ? { workloadKey: s.workloadKey } : {}),
  };
}

/** Checks a hint and normalizes it (reference spelled canonically, budget defaulted); INVALID_ARGUMENT if bad. */
export function normalizeHint(spec: HintSpec, nowMs: number, defaultBudgetBytes?: number): HintSpec {
  if (typeof spec.imageRef !== 'string' || spec.imageRef.trim() === '')
    throw new InvalidArgumentError('prefetch hint: image_ref is required');
  const imageRef = parseReference(spec.imageRef.trim()).toString();
  if (!Number.isSafeInteger(spec.priority))
    throw new InvalidArgumentError(`prefetch hint: bad priority ${spec.priority}`);
  const budget = spec.budgetBytes ?? defaultBudgetBytes;
  if (budget !== undefined && (!Number.isSafeInteger(budget) || budget < 0))
    throw new InvalidArgumentError(`prefetch hint: bad byte budget ${budget}`);
  const deadline = spec.deadlineUnixMs;
  if (deadline !== undefined && (!Number.isSafeInteger(deadline) || deadline <= nowMs))
    throw new InvalidArgumentError(`prefetch hint: deadline ${deadline} is not in the future`);
  const workloadKey = spec.workloadKey === '' ? undefined : spec.workloadKey;
  return { imageRef, priority: spec.priority, deadlineUnixMs: deadline, budgetBytes: budget, workloadKey };
}
