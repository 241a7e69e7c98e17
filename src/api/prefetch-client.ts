// A small client for ferry.prefetch.v1 (what `ferry prefetch` and tests use): unix socket or TCP + bearer
// token; gRPC errors come back as FerryErrors with the matching code.
import {
  credentials,
  makeClientConstructor,
  Metadata,
  status,
  type Client,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { FerryError, type ErrorCode } from '../errors.js';
import {
  isFinalPhase,
  prefetchServiceDefinition,
  type HintRequestMsg,
  type HintResponseMsg,
  type ListResponseMsg,
  type ProgressMsg,
} from './prefetch-messages.js';

export interface PrefetchClientOptions {
  /** unix socket path… */
  socketPath?: string | undefined;
  /** …or host:port (then `token` is sent as `authorization: Bearer <token>`). */
  address?: string | undefined;
  token?: string | undefined;
}

export interface PrefetchClient {
  hint(req: Partial<HintRequestMsg>, signal?: AbortSignal): Promise<HintResponseMsg>;
  /** Calls `onProgress` for each update; resolves with the final progress (DONE, FAILED or CANCELLED). */
  watch(jobId: string, onProgress?: (p: ProgressMsg) => void, signal?: AbortSignal): Promise<ProgressMsg>;
  cancel(jobId: string, signal?: AbortSignal): Promise<ProgressMsg>;
  list(signal?: AbortSignal): Promise<ProgressMsg[]>;
  close(): void;
}

const CODES: Partial<Record<number, ErrorCode>> = {
  [status.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [status.NOT_FOUND]: 'NOT_FOUND',
  [status.RESOURCE_EXHAUSTED]: 'RESOURCE_EXHAUSTED',
  [status.UNAUTHENTICATED]: 'UNAUTHENTICATED',
  [status.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [status.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [status.CANCELLED]: 'ABORTED',
  [status.UNAVAILABLE]: 'UNAVAILABLE',
  [status.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [status.UNIMPLEMENTED]: 'UNIMPLEMENTED',
};

/** The gRPC status as a FerryError; `grpcCode` keeps the wire code for callers that need it. */
export class PrefetchApiError extends FerryError {
  constructor(
    readonly grpcCode: number,
    message: string,
  ) {
    super(CODES[grpcCode] ?? 'INTERNAL', message);
  }
}

function toError(e: ServiceError, where: string): PrefetchApiError {
  return new PrefetchApiError(e.code, `${where}: ${e.details || e.message}`);
}

type Unary = (req: object, md: Metadata, cb: (err: ServiceError | null, res: unknown) => void) => unknown;

export async function prefetchClient(o: PrefetchClientOptions): Promise<PrefetchClient> {
  const target =
    o.address !== undefined ? o.address : o.socketPath !== undefined ? `unix://${o.socketPath}` : undefined;
  if (target === undefined) throw new FerryError('INVALID_ARGUMENT', 'prefetch client: no socket or address');
  const Ctor = makeClientConstructor(await prefetchServiceDefinition(), 'Prefetch');
  const client = new Ctor(target, credentials.createInsecure()) as Client & Record<string, unknown>;
  const md = () => {
    const m = new Metadata();
    if (o.token !== undefined) m.set('authorization', `Bearer ${o.token}`);
    return m;
  };
  const where = (method: string) => `prefetch ${method} on ${target}`;
  const call = <T>(method: string, req: object, signal?: AbortSignal): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const fn = client[method] as Unary;
      const c = fn.call(client, req, md(), (err, res) =>
        err ? reject(toError(err, where(method))) : resolve(res as T),
      ) as { cancel(): void };
      signal?.addEventListener('abort', () => c.cancel(), { once: true });
    });
  return {
    hint: (req, signal) => call<HintResponseMsg>('Hint', req, signal),
    cancel: (jobId, signal) => call<ProgressMsg>('Cancel', { job_id: jobId }, signal),
    list: async (signal) => (await call<ListResponseMsg>('List', {}, signal)).jobs,
    watch(jobId, onProgress, signal) {
      const fn = client['Watch'] as (req: object, md: Metadata) => ClientReadableStream<ProgressMsg>;
      const stream = fn.call(client, { job_id: jobId }, md());
      signal?.addEventListener('abort', () => stream.cancel(), { once: true });
      let last: ProgressMsg | undefined;
      return new Promise((resolve, reject) => {
        stream.on('data', (p: ProgressMsg) => {
          last = p;
          onProgress?.(p);
        });
        stream.on('error', (e: ServiceError) => reject(toError(e, where('Watch'))));
        stream.on('end', () => {
          if (last !== undefined && isFinalPhase(last.phase)) resolve(last);
          else
            reject(new FerryError('UNAVAILABLE', `${where('Watch')}: stream ended before the job finished`));
        });
      });
    },
    close: () => client.close(),
  };
}
