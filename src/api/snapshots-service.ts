// containerd.services.snapshots.v1.Snapshots handlers: decode each request, call the Snapshotter, map errors to
// gRPC status (logged once here). List streams Info in batches of 100, like containerd's reference server.
import {
  status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../log.js';
import { grpcCall } from '../metrics/channels.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import {
  infoMsg,
  mountsMsg,
  type CommitRequestMsg,
  type CreateRequestMsg,
  type EmptyMsg,
  type InfoMsg,
  type KeyRequestMsg,
  type ListRequestMsg,
  type UpdateRequestMsg,
} from './snapshot-messages.js';
import { grpcCode, toServiceError } from './status.js';

const LIST_BATCH = 100;
/** Outcomes containerd provokes on purpose (Stat before unpack, remote ALREADY_EXISTS): not worth a warning. */
const EXPECTED = new Set<status>([status.NOT_FOUND, status.ALREADY_EXISTS, status.FAILED_PRECONDITION]);

export interface SnapshotsServiceOptions {
  snapshotter: Snapshotter;
  log: Logger;
  /** Aborted at shutdown: in-flight work (lazy mounts, usage walks) stops. */
  signal?: AbortSignal;
}

function namespaceOf(call: { metadata: { get(k: string): unknown[] } }): string {
  const v = call.metadata.get('containerd-namespace')[0];
  return typeof v === 'string' ? v : '';
}

export function snapshotsService(o: SnapshotsServiceOptions): UntypedServiceImplementation {
  const log = o.log.child({ component: 'api' });
  const sn = o.snapshotter;
  const signal = o.signal;
  /** Each finished RPC, published for the metrics (channels.ts). */
  const done = (method: string, code: string, t0: number) =>
    grpcCall.publish({ method, code, seconds: (performance.now() - t0) / 1000 });

  function unary<Req, Res>(method: string, run: (req: Req) => Promise<Res> | Res) {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      const ns = namespaceOf(call);
      const t0 = performance.now();
      Promise.resolve()
        .then(() => run(call.request))
        .then(
          (res) => {
            log.debug({ method, ns, ms: Math.round(performance.now() - t0) }, 'rpc ok');
            done(method, 'OK', t0);
            callback(null, res);
          },
          (e: unknown) => {
            const code = grpcCode(e);
            const fields = {
              method,
              ns,
              code: status[code],
              err: e instanceof Error ? e.message : String(e),
            };
            if (EXPECTED.has(code) || code === status.INVALID_ARGUMENT) log.debug(fields, 'rpc failed');
            else log.warn(fields, 'rpc failed');
            done(method, status[code], t0);
            callback(toServiceError(e), null);
          },
        );
    };
  }

  const create = (kind: 'prepare' | 'view') => (req: CreateRequestMsg) =>
    sn[kind]({ key: req.key, parent: req.parent, labels: req.labels }, signal).then(mountsMsg);

  return {
    Prepare: unary<CreateRequestMsg, ReturnType<typeof mountsMsg>>('Prepare', create('prepare')),
    View: unary<CreateRequestMsg, ReturnType<typeof mountsMsg>>('View', create('view')),
    Mounts: unary<KeyRequestMsg, ReturnType<typeof mountsMsg>>('Mounts', (req) =>
      sn.mounts(req.key, signal).then(mountsMsg),
    ),
    Commit: unary<CommitRequestMsg, EmptyMsg>('Commit', async (req) => {
      await sn.commit({ name: req.name, key: req.key, labels: req.labels }, signal);
      return {};
    }),
    Remove: unary<KeyRequestMsg, EmptyMsg>('Remove', async (req) => {
      await sn.remove(req.key);
      return {};
    }),
    Stat: unary<KeyRequestMsg, { info: InfoMsg }>('Stat', (req) => ({ info: infoMsg(sn.stat(req.key)) })),
    Update: unary<UpdateRequestMsg, { info: InfoMsg }>('Update', (req) => {
      if (req.info === null) throw new InvalidArgumentError('update: info is required');
      const paths = req.update_mask?.paths ?? [];
      return { info: infoMsg(sn.update({ name: req.info.name, labels: req.info.labels }, paths)) };
    }),
    Usage: unary<KeyRequestMsg, { size: number; inodes: number }>('Usage', async (req) => {
      const u = await sn.usage(req.key, signal);
      return { size: u.sizeBytes, inodes: u.inodes };
    }),
    Cleanup: unary<{ snapshotter: string }, EmptyMsg>('Cleanup', async () => {
      await sn.cleanup(signal);
      return {};
    }),
    List: (call: ServerWritableStream<ListRequestMsg, { info: InfoMsg[] }>): void => {
      const t0 = performance.now();
      try {
        const infos = sn.list(call.request.filters).map(infoMsg);
        for (let i = 0; i < infos.length; i += LIST_BATCH)
          call.write({ info: infos.slice(i, i + LIST_BATCH) });
        call.end();
        done('List', 'OK', t0);
      } catch (e) {
        done('List', status[grpcCode(e)], t0);
        log.debug({ method: 'List', ns: namespaceOf(call), err: String(e) }, 'rpc failed');
        call.emit('error', toServiceError(e));
      }
    },
  };
}
