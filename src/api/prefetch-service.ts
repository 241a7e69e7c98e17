// ferry.prefetch.v1.Prefetch handlers over a HintQueue: decode, call, map errors to gRPC status (logged once
// here), and for the TCP listener check the bearer token first (constant-time; the token is never logged).
import { createHash, timingSafeEqual } from 'node:crypto';
import {
  status,
  type Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { FerryError, isFerryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HintQueue } from '../prefetch/hint-queue.js';
import {
  hintSpec,
  isFinalPhase,
  progressMsg,
  type HintRequestMsg,
  type HintResponseMsg,
  type JobRequestMsg,
  type ListResponseMsg,
  type ProgressMsg,
} from './prefetch-messages.js';
import { grpcCode, toServiceError } from './status.js';

export interface PrefetchServiceOptions {
  jobs: HintQueue;
  log: Logger;
  /** When set, every call must carry `authorization: Bearer <token>`. */
  token?: string | undefined;
  /** Aborted at shutdown: open Watch streams end with UNAVAILABLE. */
  signal: AbortSignal;
}

const digestOf = (s: string) => createHash('sha256').update(s).digest();

/** Throws UNAUTHENTICATED unless the metadata carries the token (compared in constant time). */
export function checkBearer(metadata: Metadata, tokenDigest: Buffer): void {
  const v = metadata.get('authorization')[0];
  const text = typeof v === 'string' ? v : '';
  const m = /^Bearer\s+(.+)$/i.exec(text.trim());
  // Comparing digests keeps the time independent of where (and whether) the strings differ.
  if (m === null || !timingSafeEqual(digestOf(m[1]!), tokenDigest))
    throw new FerryError('UNAUTHENTICATED', 'prefetch API: missing or wrong bearer token');
}

export function prefetchService(o: PrefetchServiceOptions): UntypedServiceImplementation {
  const log = o.log.child({ component: 'prefetch-api' });
  const tokenDigest = o.token === undefined ? undefined : digestOf(o.token);
  const auth = (md: Metadata) => {
    if (tokenDigest !== undefined) checkBearer(md, tokenDigest);
  };
  const logFailure = (method: string, e: unknown) => {
    const code = grpcCode(e);
    const fields = { method, code: status[code], err: e };
    if (code === status.UNKNOWN || code === status.INTERNAL) log.warn(fields, 'rpc failed');
    else log.debug(fields, 'rpc failed');
  };

  function unary<Req, Res>(method: string, run: (req: Req) => Res) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      try {
        auth(call.metadata);
        callback(null, run(call.request));
      } catch (e) {
        logFailure(method, e);
        callback(toServiceError(e), null);
      }
    };
  }

  return {
    Hint: unary<HintRequestMsg, HintResponseMsg>('Hint', (req) => {
      const r = o.jobs.hint(hintSpec(req));
      return { job_id: r.jobId, coalesced: r.coalesced };
    }),
    Cancel: unary<JobRequestMsg, ProgressMsg>('Cancel', (req) => progressMsg(o.jobs.cancel(req.job_id))),
    List: unary<Record<string, never>, ListResponseMsg>('List', () => ({
      jobs: o.jobs.list().map(progressMsg),
    })),
    Watch: (call: ServerWritableStream<JobRequestMsg, ProgressMsg>): void => {
      let unsubscribe: (() => void) | undefined;
      let ended = false;
      const end = (e?: unknown) => {
        if (ended) return;
        ended = true;
        unsubscribe?.();
        o.signal.removeEventListener('abort', onShutdown);
        if (e === undefined) call.end();
        else call.emit('error', toServiceError(e));
      };
      const onShutdown = () => end(new FerryError('UNAVAILABLE', 'the daemon is shutting down'));
      try {
        auth(call.metadata);
        if (o.signal.aborted) throw new FerryError('UNAVAILABLE', 'the daemon is shutting down');
        o.signal.addEventListener('abort', onShutdown, { once: true });
        call.on('cancelled', () => end());
        unsubscribe = o.jobs.watch(call.request.job_id, (p) => {
          if (ended) return;
          const msg = progressMsg(p);
          call.write(msg);
          if (isFinalPhase(msg.phase)) end();
        });
        // The first progress may already have been final (a finished job): then end() ran before `unsubscribe`.
        if (ended) unsubscribe();
      } catch (e) {
        if (!isFerryError(e, 'UNAVAILABLE')) logFailure('Watch', e);
        end(e);
      }
    },
  };
}
