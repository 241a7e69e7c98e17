// The prefetch-hint job model: what a hint asks for (HintSpec), what Watch/List report (HintProgress), and the
// contract between the job queue and the work itself (HintRunner), so the queue can be tested with fakes.
import { FerryError, InvalidArgumentError } from '../errors.js';
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

/** What the node allows a hint to ask for. */
export interface HintLimits {
  /** The node's `[prefetch] budgetBytes`: the budget of a hint that names none, and the most one may ask for. */
  readonly nodeBudgetBytes?: number | undefined;
  /** `[prefetch] hintRegistries`: registries a hint may name; empty or absent = any. */
  readonly registries?: readonly string[] | undefined;
}

export const MAX_IMAGE_REF_BYTES = 512;
export const MAX_WORKLOAD_KEY_BYTES = 256;
/** Keys like `namespace/deployment`, `team:service@v2`: no spaces, quotes or control characters. */
const WORKLOAD_KEY = /^[A-Za-z0-9._:/@+=~-]+$/;

/**
 * Checks a hint and normalizes it (reference spelled canonically, budget defaulted and capped by the node's);
 * INVALID_ARGUMENT if malformed, PERMISSION_DENIED for a registry outside the allowlist. Over-long values are
 * not echoed back.
 */
export function normalizeHint(spec: HintSpec, nowMs: number, limits: HintLimits = {}): HintSpec {
  if (typeof spec.imageRef !== 'string' || spec.imageRef.trim() === '')
    throw new InvalidArgumentError('prefetch hint: image_ref is required');
  if (Buffer.byteLength(spec.imageRef, 'utf8') > MAX_IMAGE_REF_BYTES)
    throw new InvalidArgumentError(`prefetch hint: image_ref is longer than ${MAX_IMAGE_REF_BYTES} bytes`);
  const ref = parseReference(spec.imageRef.trim());
  const allowed = limits.registries ?? [];
  if (allowed.length > 0 && !allowed.some((r) => r.toLowerCase() === ref.registry.toLowerCase()))
    throw new FerryError(
      'PERMISSION_DENIED',
      `prefetch hint: registry ${ref.registry} is not in this node's [prefetch] hintRegistries`,
    );
  if (!Number.isSafeInteger(spec.priority))
    throw new InvalidArgumentError(`prefetch hint: bad priority ${spec.priority}`);
  const node = limits.nodeBudgetBytes;
  const asked = spec.budgetBytes ?? node;
  if (asked !== undefined && (!Number.isSafeInteger(asked) || asked < 0))
    throw new InvalidArgumentError(`prefetch hint: bad byte budget ${asked}`);
  // A client may ask for less than the node's budget, never more.
  const budget = asked !== undefined && node !== undefined ? Math.min(asked, node) : asked;
  const deadline = spec.deadlineUnixMs;
  if (deadline !== undefined && (!Number.isSafeInteger(deadline) || deadline <= nowMs))
    throw new InvalidArgumentError(`prefetch hint: deadline ${deadline} is not in the future`);
  const workloadKey = spec.workloadKey === '' ? undefined : spec.workloadKey;
  if (
    workloadKey !== undefined &&
    (Buffer.byteLength(workloadKey, 'utf8') > MAX_WORKLOAD_KEY_BYTES || !WORKLOAD_KEY.test(workloadKey))
  )
    throw new InvalidArgumentError(
      `prefetch hint: workload_key must be 1 to ${MAX_WORKLOAD_KEY_BYTES} letters, digits or . _ : / @ + = ~ -`,
    );
  return {
    imageRef: ref.toString(),
    priority: spec.priority,
    deadlineUnixMs: deadline,
    budgetBytes: budget,
    workloadKey,
  };
}
