// The snapshots socket systemd passes (ferry.socket): accepted on from the daemon's first moments, each
// connection's HTTP/2 handshake answered at once (containerd's grpc-go drops a silent connection after about a
// second, longer than a daemon start) and handed to grpc-js once it serves. The path is systemd's: never removed.
import { createServer, type Server, type Socket } from 'node:net';
import { FerryError } from '../errors.js';
import { answerPreface } from '../fuse/holder/h2-preface.js';
import type { Logger } from '../log.js';
import { takeActivatedSocket } from './socket-activation.js';

/** Connections waiting for the gRPC server at once; more are closed (the client redials). */
const MAX_WAITING = 512;
const PREFACE_TIMEOUT_MS = 10_000;

let opened: Promise<InheritedSocket | undefined> | undefined;

/**
 * systemd's socket when it was passed to this process, accepting from the first call on (bin/ferry.js makes it
 * before loading the CLI; the daemon's start gets the same one); undefined without socket activation.
 */
export function activatedSocket(): Promise<InheritedSocket | undefined> {
  opened ??= (async () => {
    const fd = takeActivatedSocket();
    return fd === undefined ? undefined : InheritedSocket.open(fd);
  })();
  return opened;
}

export class InheritedSocket {
  private readonly waiting = new Set<Socket>();
  private inject: ((sock: Socket) => void) | undefined;
  /** Absent until the daemon hands its logger over (useLogger); what happens before is not logged. */
  private log: Logger | undefined;

  private constructor(
    private readonly listener: Server,
    readonly fd: number,
  ) {}

  /** Starts accepting on the inherited listening descriptor `fd`. */
  static async open(fd: number): Promise<InheritedSocket> {
    const listener = createServer({ pauseOnConnect: true });
    const self = new InheritedSocket(listener, fd);
    listener.on('connection', (sock: Socket) => void self.admit(sock));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', (err) =>
        reject(
          new FerryError('UNAVAILABLE', `cannot accept on inherited fd ${fd}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      listener.listen({ fd }, () => resolve());
    });
    listener.on('error', (err) => self.log?.error({ err }, 'inherited snapshots socket failed'));
    return self;
  }

  useLogger(log: Logger): void {
    this.log = log.child({ component: 'grpc' });
  }

  /** From now on each connection goes to `inject` (grpc-js), the waiting ones first. */
  serve(inject: (sock: Socket) => void): void {
    this.inject = inject;
    const waiting = [...this.waiting];
    this.waiting.clear();
    if (waiting.length > 0)
      this.log?.info({ connections: waiting.length }, 'serving connections made during start');
    for (const s of waiting) if (!s.destroyed) inject(s);
  }

  /** Stops accepting: later connections wait in the socket's backlog for the next daemon. */
  async close(): Promise<void> {
    this.inject = undefined;
    for (const s of this.waiting) s.destroy();
    this.waiting.clear();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  private async admit(sock: Socket): Promise<void> {
    sock.on('error', (e) => this.log?.debug({ err: String(e) }, 'snapshots client connection error'));
    if (!(await answerPreface(sock, PREFACE_TIMEOUT_MS))) return;
    if (this.inject !== undefined) return this.inject(sock);
    if (!this.listener.listening || this.waiting.size >= MAX_WAITING) return void sock.destroy();
    this.waiting.add(sock);
    sock.once('close', () => this.waiting.delete(sock));
  }
}
