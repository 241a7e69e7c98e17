// The holder's unix socket: owner-only, a stale socket file replaced only when nothing answers on it; each
// connection is framed (wire.ts) and handed to the FuseHolder, which keeps only the newest.
import { lstat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { UnavailableError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { bindSocketPrivately, privateDir } from '../../private-fs.js';
import type { DaemonLink, FuseHolder } from './holder.js';
import { encodeControl, encodeData, FrameDecoder, type Frame } from './wire.js';

export interface HolderServerOptions {
  socketPath: string;
  holder: FuseHolder;
  log: Logger;
}

export interface HolderServer {
  close(): Promise<void>;
}

/** true when a process accepts connections on the socket (a live holder: never steal its path). */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

async function claimPath(path: string): Promise<void> {
  await privateDir(dirname(path));
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined) return;
  if (!st.isSocket()) throw new UnavailableError(`holder socket ${path} exists and is not a socket`);
  if (await socketAnswers(path)) throw new UnavailableError(`another FUSE holder already listens on ${path}`);
  await unlink(path);
}

function serveConnection(sock: Socket, holder: FuseHolder, log: Logger): void {
  const decoder = new FrameDecoder();
  const write = (b: Buffer): void => {
    if (!sock.destroyed) sock.write(b);
  };
  const link: DaemonLink = {
    send: (m) => write(encodeControl(m)),
    sendRequest: (handle, req) => write(encodeData('request', handle, req)),
    close: (reason) => {
      log.debug({ reason }, 'closing daemon connection');
      sock.end();
      // A peer that never reads must not keep the socket (and its queued requests) alive.
      setTimeout(() => sock.destroy(), 1000).unref();
    },
  };
  const conn = holder.connect(link);
  sock.on('data', (chunk: Buffer) => {
    let frames: Frame[];
    try {
      frames = decoder.push(chunk);
    } catch (e) {
      log.warn({ err: String(e) }, 'malformed frame from the daemon; closing its connection');
      sock.destroy();
      return;
    }
    for (const f of frames) {
      if (f.kind === 'control') conn.message(f.message);
      else if (f.kind === 'reply') conn.reply(f.handle, f.data);
      else {
        log.warn('the daemon sent a request frame; closing its connection');
        sock.destroy();
        return;
      }
    }
  });
  sock.on('error', (e) => log.debug({ err: String(e) }, 'daemon connection error'));
  sock.on('close', () => conn.closed());
}

/** Listens on `socketPath` (mode 0600, parent directory created 0700). */
export async function listenHolder(o: HolderServerOptions): Promise<HolderServer> {
  await claimPath(o.socketPath);
  const server: Server = createServer((sock) => serveConnection(sock, o.holder, o.log));
  try {
    await bindSocketPrivately(
      o.socketPath,
      0o600,
      (path) =>
        new Promise<void>((res, rej) => {
          server.once('error', rej);
          server.listen(path, () => {
            server.off('error', rej);
            res();
          });
        }),
    );
  } catch (e) {
    server.close();
    throw new UnavailableError(`cannot listen on ${o.socketPath}: ${String(e)}`, { cause: e });
  }
  server.on('error', (e) => o.log.error({ err: String(e) }, 'holder socket error'));
  return {
    close: async () => {
      await new Promise<void>((res) => server.close(() => res()));
      await unlink(o.socketPath).catch(() => undefined); // bound elsewhere and renamed: not unlinked by close
    },
  };
}
