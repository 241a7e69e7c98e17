// Opening a connection to the FUSE holder: connect to its socket, wait for its HELLO (checking the wire
// version), then hand every later frame, and the close, to whoever took the connection.
import { createConnection, type Socket } from 'node:net';
import { AbortedError, UnavailableError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { FrameDecoder, WIRE_VERSION, type ControlMessage, type Frame } from './wire.js';

export type Hello = Extract<ControlMessage, { type: 'hello' }>;

export interface HolderConnection {
  sock: Socket;
  hello: Hello;
  /** Registers the receiver of every frame after HELLO (frames that came first are delivered now). */
  listen(onFrame: (f: Frame) => void, onClose: () => void): void;
}

const HELLO_TIMEOUT_MS = 10_000;

function connectSocket(socketPath: string, signal?: AbortSignal): Promise<Socket> {
  return new Promise((res, rej) => {
    if (signal?.aborted) return rej(new AbortedError(`connect to FUSE holder ${socketPath} aborted`));
    const sock = createConnection(socketPath);
    const onAbort = (): void => {
      sock.destroy();
      rej(new AbortedError(`connect to FUSE holder ${socketPath} aborted`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      res(sock);
    });
    sock.once('error', (e) => {
      signal?.removeEventListener('abort', onAbort);
      rej(new UnavailableError(`no FUSE holder answers on ${socketPath}: ${e.message}`, { cause: e }));
    });
  });
}

/** Connects and waits for HELLO; UnavailableError when nothing listens or the peer is not a holder we speak to. */
export async function openHolderConnection(
  socketPath: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<HolderConnection> {
  const sock = await connectSocket(socketPath, signal);
  const decoder = new FrameDecoder();
  let early: Frame[] = [];
  let receiver: ((f: Frame) => void) | undefined;
  let closed = false;
  let onClosed: (() => void) | undefined;
  return new Promise<HolderConnection>((res, rej) => {
    let hello: Hello | undefined;
    const fail = (e: Error): void => {
      sock.destroy();
      rej(e);
    };
    const timer = setTimeout(
      () => fail(new UnavailableError(`FUSE holder at ${socketPath} sent no HELLO`)),
      HELLO_TIMEOUT_MS,
    );
    timer.unref();
    const onAbort = (): void => fail(new AbortedError(`connect to FUSE holder ${socketPath} aborted`));
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    sock.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (e) {
        log.error({ err: String(e), socketPath }, 'malformed frame from the FUSE holder; disconnecting');
        sock.destroy();
        return;
      }
      for (const f of frames) {
        if (hello !== undefined) {
          if (receiver !== undefined) receiver(f);
          else early.push(f);
          continue;
        }
        done();
        if (f.kind !== 'control' || f.message.type !== 'hello')
          return fail(new UnavailableError(`FUSE holder at ${socketPath} did not start with HELLO`));
        if (f.message.version !== WIRE_VERSION) {
          const v = f.message.version;
          return fail(
            new UnavailableError(`FUSE holder at ${socketPath} speaks wire v${v}, not v${WIRE_VERSION}`),
          );
        }
        hello = f.message;
        res({
          sock,
          hello,
          listen(onFrame, onClose) {
            receiver = onFrame;
            onClosed = onClose;
            const waiting = early;
            early = [];
            for (const e of waiting) onFrame(e);
            if (closed) onClose();
          },
        });
      }
    });
    sock.on('error', (e) => log.debug({ err: String(e), socketPath }, 'FUSE holder socket error'));
    sock.on('close', () => {
      closed = true;
      if (hello === undefined) {
        done();
        rej(new UnavailableError(`FUSE holder at ${socketPath} closed the connection before HELLO`));
      } else onClosed?.();
    });
  });
}
