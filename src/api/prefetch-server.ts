// The prefetch-hint gRPC servers: one on a unix socket (mode 0600: node-local callers with access to the run
// dir), and optionally one on TCP that requires a bearer token. Both serve one HintQueue.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { unlink } from 'node:fs/promises';
import { FerryError, InvalidArgumentError } from '../errors.js';
import { readSecretFile } from '../config/secret.js';
import type { Logger } from '../log.js';
import { bindSocketPrivately } from '../private-fs.js';
import type { HintQueue } from '../prefetch/hint-queue.js';
import { prefetchServiceDefinition } from './prefetch-messages.js';
import { prefetchService } from './prefetch-service.js';
import { claimSocketPath } from './snapshots-server.js';

export interface PrefetchServerOptions {
  jobs: HintQueue;
  socketPath: string;
  /** host:port; requires `token`. */
  tcpAddress?: string | undefined;
  token?: string | undefined;
  log: Logger;
}

/** Reads the bearer token file: surrounding whitespace dropped; short, placeholder or patterned tokens refused. */
export function readTokenFile(path: string): Promise<string> {
  return readSecretFile(path, 'prefetch.hintTokenFile');
}

function bind(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) =>
      err
        ? reject(new FerryError('UNAVAILABLE', `cannot listen on ${address}: ${err.message}`, { cause: err }))
        : resolve(port),
    ),
  );
}

export class PrefetchServer {
  private readonly servers: Server[] = [];
  private readonly abort = new AbortController();
  private readonly log: Logger;
  /** The TCP port actually bound (useful with port 0), once started. */
  tcpPort: number | undefined;

  constructor(private readonly o: PrefetchServerOptions) {
    this.log = o.log.child({ component: 'prefetch-api' });
    if (o.tcpAddress !== undefined && (o.token === undefined || o.token === ''))
      throw new InvalidArgumentError('prefetch.hintListen needs prefetch.hintTokenFile (a bearer token)');
  }

  async start(): Promise<void> {
    const def = await prefetchServiceDefinition();
    const { jobs, log } = this.o;
    const signal = this.abort.signal;
    try {
      await claimSocketPath(this.o.socketPath, this.log);
      const local = new Server();
      local.addService(def, prefetchService({ jobs, log, signal }));
      this.servers.push(local);
      await bindSocketPrivately(this.o.socketPath, 0o600, (at) => bind(local, `unix://${at}`));
      this.log.info({ socket: this.o.socketPath }, 'prefetch hint API listening');
      if (this.o.tcpAddress !== undefined) {
        const tcp = new Server();
        tcp.addService(def, prefetchService({ jobs, log, signal, token: this.o.token }));
        this.servers.push(tcp);
        this.tcpPort = await bind(tcp, this.o.tcpAddress);
        this.log.info(
          { address: this.o.tcpAddress, port: this.tcpPort },
          'prefetch hint API listening on TCP',
        );
      }
    } catch (e) {
      await this.stop(0);
      throw e;
    }
  }

  /** Ends open Watch streams, lets unary calls finish for up to `drainMs`, then removes the socket. */
  async stop(drainMs: number): Promise<void> {
    this.abort.abort();
    const servers = this.servers.splice(0);
    await Promise.all(
      servers.map(async (server) => {
        const drained = new Promise<boolean>((resolve) => server.tryShutdown(() => resolve(true)));
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), drainMs);
          timer.unref();
        });
        const clean = await Promise.race([drained, timedOut]);
        clearTimeout(timer);
        if (!clean) server.forceShutdown();
      }),
    );
    await unlink(this.o.socketPath).catch(() => undefined);
  }
}
