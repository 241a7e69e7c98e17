// The snapshots socket kept across daemon restarts: the holder listens on containerd's path, answers each
// connection's HTTP/2 preface itself (h2-preface.ts) and splices it, byte for byte, to the daemon's private
// socket; while no daemon answers it holds the connections (bounded in count and time).
import { lstat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { UnavailableError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { bindSocketPrivately, dirWithMode } from '../../private-fs.js';
import { answerPreface } from './h2-preface.js';
import { socketAnswers } from './server.js';

export interface SocketRelayOptions {
  /** Where clients (containerd) connect. */
  socketPath: string;
  /** The daemon's own socket (0600, only this process connects). */
  targetPath: string;
  /** Mode of socketPath (the daemon's own default, 0660). */
  mode: number;
  log: Logger;
  /** Connections held at once while no daemon answers; more are closed. */
  maxHeld?: number;
  /** A connection held this long is closed (a client with a deadline has given up by then). */
  holdMs?: number;
  /** How often a held connection retries the daemon's socket. */
  retryMs?: number;
  /** A client that does not acknowledge the HTTP/2 preface within this long is closed. */
  prefaceTimeoutMs?: number;
}

interface Held {
  sock: Socket;
  since: number;
}

export class SocketRelay {
  private server: Server | undefined;
  private readonly held = new Set<Held>();
  private readonly spliced = new Set<Socket>();
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;
  private readonly maxHeld: number;
  private readonly holdMs: number;
  private readonly retryMs: number;

  constructor(private readonly o: SocketRelayOptions) {
    this.maxHeld = o.maxHeld ?? 256;
    this.holdMs = o.holdMs ?? 60_000;
    this.retryMs = o.retryMs ?? 50;
  }

  /** Connections waiting for a daemon / spliced to one (tests, logs). */
  counts(): { held: number; spliced: number } {
    return { held: this.held.size, spliced: this.spliced.size };
  }

  /** Claims socketPath (a live listener there is refused, a stale socket replaced) and listens. */
  async start(): Promise<void> {
    const path = this.o.socketPath;
    await dirWithMode(dirname(path), 0o755);
    const st = await lstat(path).catch(() => undefined);
    if (st !== undefined) {
      if (!st.isSocket()) throw new UnavailableError(`snapshots socket ${path} exists and is not a socket`);
      if (await socketAnswers(path)) throw new UnavailableError(`something already listens on ${path}`);
      await unlink(path);
    }
    const server = createServer({ pauseOnConnect: true }, (sock) => this.accept(sock));
    await bindSocketPrivately(
      path,
      this.o.mode,
      (at) =>
        new Promise<void>((res, rej) => {
          server.once('error', rej);
          server.listen(at, () => {
            server.off('error', rej);
            res();
          });
        }),
    ).catch((e: unknown) => {
      server.close();
      throw new UnavailableError(`cannot listen on ${path}: ${String(e)}`, { cause: e });
    });
    server.on('error', (e) => this.o.log.error({ err: String(e) }, 'snapshots relay socket error'));
    this.server = server;
  }

  /** A daemon may have come up: retry the held connections now instead of at the next tick. */
  nudge(): void {
    if (this.held.size > 0) void this.probe();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    for (const h of this.held) h.sock.destroy();
    this.held.clear();
    for (const s of this.spliced) s.destroy();
    const server = this.server;
    if (server === undefined) return;
    await new Promise<void>((res) => server.close(() => res()));
    await unlink(this.o.socketPath).catch(() => undefined);
  }

  private accept(sock: Socket): void {
    sock.on('error', (e) => this.o.log.debug({ err: String(e) }, 'snapshots client connection error'));
    void this.admit(sock);
  }

  /** Straight through when the daemon answers; held (unread: the bytes wait in the kernel) when it does not. */
  private async admit(sock: Socket): Promise<void> {
    if (!(await answerPreface(sock, this.o.prefaceTimeoutMs ?? 10_000))) return;
    const up = await this.dial();
    if (up !== undefined) return this.splice(sock, up);
    if (this.closed || sock.destroyed) return void sock.destroy();
    if (this.held.size >= this.maxHeld) {
      this.o.log.warn(
        { held: this.held.size },
        'no ferry daemon and too many waiting connections; closing one',
      );
      return void sock.destroy();
    }
    const h: Held = { sock, since: Date.now() };
    this.held.add(h);
    sock.once('close', () => this.held.delete(h));
    if (this.held.size === 1) this.o.log.info('no ferry daemon answers; holding snapshots connections');
    this.schedule();
  }

  /** One connection to the daemon's socket, or undefined when nothing answers there. */
  private dial(): Promise<Socket | undefined> {
    return new Promise((res) => {
      const up = createConnection(this.o.targetPath);
      const failed = (): void => {
        up.destroy();
        res(undefined);
      };
      up.once('error', failed);
      up.once('connect', () => {
        up.off('error', failed);
        res(up);
      });
    });
  }

  private splice(client: Socket, up: Socket): void {
    if (this.closed || client.destroyed) return void up.destroy();
    this.spliced.add(client);
    const end = (): void => {
      this.spliced.delete(client);
      client.destroy();
      up.destroy();
    };
    up.on('error', (e) =>
      this.o.log.debug({ err: String(e) }, 'daemon side of a snapshots connection failed'),
    );
    client.once('close', end);
    up.once('close', end);
    client.pipe(up);
    up.pipe(client);
    client.resume();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.closed || this.held.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.probe();
    }, this.retryMs);
    this.timer.unref();
  }

  /** Drops expired connections; tries the daemon with the oldest, and once it answers, splices them all. */
  private async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const now = Date.now();
      for (const h of this.held)
        if (now - h.since >= this.holdMs) {
          this.held.delete(h);
          h.sock.destroy();
          this.o.log.warn(
            { heldMs: now - h.since },
            'no ferry daemon came back in time; closed a snapshots connection',
          );
        }
      while (this.held.size > 0 && !this.closed) {
        const first = this.held.values().next().value as Held;
        const up = await this.dial();
        if (up === undefined) break;
        this.held.delete(first);
        this.o.log.debug(
          { heldMs: Date.now() - first.since },
          'held snapshots connection handed to the daemon',
        );
        this.splice(first.sock, up);
      }
    } finally {
      this.probing = false;
      this.schedule();
    }
  }
}
