// ferry.prefetch.v1 (proto/prefetch.proto): loading the proto, the decoded message shapes as proto-loader gives
// them (keepCase, defaults, enums as strings, uint64 as numbers), and conversions to and from the job model.
import type { ServiceDefinition } from '@grpc/grpc-js';
import { load, type PackageDefinition } from '@grpc/proto-loader';
import type { HintPhase, HintProgress, HintSpec } from '../prefetch/hint-job.js';
import { LOADER_OPTIONS, serviceDefinition } from './proto.js';

export const PREFETCH_SERVICE = 'ferry.prefetch.v1.Prefetch';

let loaded: Promise<PackageDefinition> | undefined;

export async function prefetchServiceDefinition(): Promise<ServiceDefinition> {
  loaded ??= load('prefetch.proto', LOADER_OPTIONS);
  return serviceDefinition(await loaded, PREFETCH_SERVICE);
}

export interface HintRequestMsg {
  image_ref: string;
  priority: number;
  deadline_unix_ms: number;
  byte_budget: number;
  workload_key: string;
}

export interface HintResponseMsg {
  job_id: string;
  coalesced: boolean;
}

export interface JobRequestMsg {
  job_id: string;
}

export type PhaseMsg = HintPhase | 'PHASE_UNSPECIFIED';

export interface ProgressMsg {
  job_id: string;
  image_ref: string;
  manifest_digest: string;
  phase: PhaseMsg;
  priority: number;
  chunks_done: number;
  chunks_total: number;
  bytes_done: number;
  bytes_total: number;
  chunks_cached: number;
  chunks_failed: number;
  trace_origin: string;
  error_code: string;
  error: string;
  hints: number;
  created_unix_ms: number;
  finished_unix_ms: number;
  deadline_unix_ms: number;
  workload_key: string;
}

export interface ListResponseMsg {
  jobs: ProgressMsg[];
}

/** Zero values mean "not set" on the wire (proto3). */
export function hintSpec(m: Partial<HintRequestMsg>): HintSpec {
  const positive = (n: number | undefined) => (n === undefined || n === 0 ? undefined : n);
  return {
    imageRef: m.image_ref ?? '',
    priority: m.priority ?? 0,
    deadlineUnixMs: positive(m.deadline_unix_ms),
    budgetBytes: positive(m.byte_budget),
    workloadKey: m.workload_key === '' ? undefined : m.workload_key,
  };
}

export function progressMsg(p: Readonly<HintProgress>): ProgressMsg {
  return {
    job_id: p.jobId,
    image_ref: p.imageRef,
    manifest_digest: p.manifestDigest ?? '',
    phase: p.phase,
    priority: p.priority,
    chunks_done: p.chunksDone,
    chunks_total: p.chunksTotal,
    bytes_done: p.bytesDone,
    bytes_total: p.bytesTotal,
    chunks_cached: p.chunksCached,
    chunks_failed: p.chunksFailed,
    trace_origin: p.traceOrigin ?? '',
    error_code: p.errorCode ?? '',
    error: p.error ?? '',
    hints: p.hints,
    created_unix_ms: p.createdUnixMs,
    finished_unix_ms: p.finishedUnixMs ?? 0,
    deadline_unix_ms: p.deadlineUnixMs ?? 0,
    workload_key: p.workloadKey ?? '',
  };
}

export const isFinalPhase = (p: PhaseMsg): boolean => p === 'DONE' || p === 'FAILED' || p === 'CANCELLED';
