// The gRPC server on a unix socket (mode 0660) serving the snapshots service. Refuses to start over a live
// socket, replaces a stale one, and shuts down in order: stop accepting, drain within a deadline, remove the socket.
// Or it serves a listening socket it inherited (systemd's ferry.socket), which it never removes.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { FerryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { InheritedSocket } from './inherited-socket.js';
import { bindSocketPrivately, dirWithMode } from '../private-fs.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { loadSnapshotsProto, serviceDefinition, SNAPSHOTS_SERVICE } from './proto.js';
import { snapshotsService } from './snapshots-service.js';

const MAX_MESSAGE_BYTES = 16 << 20; // containerd's default on both sides

export interface SnapshotsServerOptions {
  socketPath: string;
  snapshotter: Snapshotter;
  log: Logger;
  /** Default 0o660: containerd runs as root; a group may be granted access. */
  socketMode?: number;
  /** systemd's listening socket, accepted on instead of binding socketPath (socket activation). */
  inherited?: InheritedSocket;
}

async function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Makes `path` usable for a new listener: refuses a live socket (another daemon), removes a stale one. */
export async function claimSocketPath(path: string, log: Logger): Promise<void> {
  await dirWithMode(dirname(path), 0o755);
  const existing = await lstat(path).catch(() => undefined);
  if (existing === undefined) return;
  if (!existing.isSocket()) throw new FerryError('FAILED_PRECONDITION', `${path} exists and is not a socket`);
  if (await socketIsLive(path))
    throw new FerryError('FAILED_PRECONDITION', `${path} is in use: is another ferry daemon running?`);
  await unlink(path);
  log.info({ socket: path }, 'removed stale socket');
}

export class SnapshotsServer {
  private server: Server | undefined;
  private readonly abort = new AbortController();
  private readonly log: Logger;

  constructor(private readonly o: SnapshotsServerOptions) {
    this.log = o.log.child({ component: 'grpc' });
  }

  async start(): Promise<void> {
    const path = this.o.socketPath;
    const { inherited } = this.o;
    if (inherited === undefined) await claimSocketPath(path, this.log);
    const server = new Server({
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    });
    const def = await loadSnapshotsProto();
    server.addService(
      serviceDefinition(def, SNAPSHOTS_SERVICE),
      snapshotsService({
        snapshotter: this.o.snapshotter,
        log: this.o.log,
        signal: this.abort.signal,
      }),
    );
    if (inherited !== undefined) {
      const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
      inherited.serve((sock) => injector.injectConnection(sock));
      this.server = server;
      this.log.info({ socket: path, fd: inherited.fd }, 'snapshots API serving the inherited socket');
      return;
    }
    const bind = (at: string) =>
      new Promise<void>((resolve, reject) =>
        server.bindAsync(`unix://${at}`, ServerCredentials.createInsecure(), (err) =>
          err
            ? reject(
                new FerryError('UNAVAILABLE', `cannot listen on ${path}: ${err.message}`, { cause: err }),
              )
            : resolve(),
        ),
      );
    await bindSocketPrivately(path, this.o.socketMode ?? 0o660, bind).catch((e: unknown) => {
      server.forceShutdown();
      throw e;
    });
    this.server = server;
    this.log.info({ socket: path }, 'snapshots API listening');
  }

  /** Stops accepting, lets running calls finish for up to `drainMs`, then cancels the rest. */
  async stop(drainMs: number): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    // Stop accepting: connections made from now on wait in the socket's backlog for the next daemon.
    void this.o.inherited?.close();
    const drained = new Promise<boolean>((resolve) => server.tryShutdown(() => resolve(true)));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), drainMs);
      timer.unref();
    });
    const clean = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (!clean) {
      this.log.warn({ drainMs }, 'calls still running at shutdown deadline; cancelling them');
      this.abort.abort();
      server.forceShutdown();
    }
    if (this.o.inherited === undefined) await unlink(this.o.socketPath).catch(() => undefined);
    this.log.info('snapshots API stopped');
  }
}
