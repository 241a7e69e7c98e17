// HTTP/2 connections accepted before their server is up: the keeper sends the server's connection preface (an
// empty SETTINGS frame) at once, because containerd's grpc-go gives up on a connection whose server says nothing
// for about a second (its first reconnect backoff); and it takes the client's acknowledgement of that frame out
// of the stream, so the real server, which sends its own SETTINGS later, sees an ordinary connection.
import type { Socket } from 'node:net';

/** An empty SETTINGS frame: length 0, type 4, no flags, stream 0. */
export const SERVER_PREFACE = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_BYTES = 9;
const SETTINGS = 0x4;
const ACK = 0x1;
/** A client sends a few small frames before its ACK; more than this is not a gRPC client. */
const MAX_BYTES_BEFORE_ACK = 256 * 1024;

/**
 * The client's bytes up to its SETTINGS ACK of our preface, with that frame removed; undefined while more are
 * needed; null when they are not an HTTP/2 client connection.
 */
export function withoutFirstSettingsAck(buf: Buffer): Buffer | undefined | null {
  const head = buf.subarray(0, CLIENT_PREFACE.length);
  if (!head.equals(CLIENT_PREFACE.subarray(0, head.length))) return null;
  let off = CLIENT_PREFACE.length;
  while (off + FRAME_HEADER_BYTES <= buf.length) {
    const length = buf.readUIntBE(off, 3);
    const end = off + FRAME_HEADER_BYTES + length;
    if (buf[off + 3] === SETTINGS && ((buf[off + 4] ?? 0) & ACK) !== 0)
      return end <= buf.length ? Buffer.concat([buf.subarray(0, off), buf.subarray(end)]) : undefined;
    off = end;
  }
  return buf.length > MAX_BYTES_BEFORE_ACK ? null : undefined;
}

/**
 * Sends the server preface on a freshly accepted connection and reads until the client acknowledged it. Resolves
 * true with the socket paused and every other byte it sent put back (unshift), ready for a relay or for
 * grpc-js; false (socket destroyed) for a client that is not HTTP/2 or does not answer within timeoutMs.
 */
export function answerPreface(sock: Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const finish = (rest: Buffer | null): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.pause();
      if (rest === null) {
        sock.destroy();
        return resolve(false);
      }
      if (rest.length > 0) sock.unshift(rest);
      resolve(true);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const rest = withoutFirstSettingsAck(buf);
      if (rest !== undefined) finish(rest);
    };
    const onClose = (): void => finish(null);
    const timer = setTimeout(() => finish(null), timeoutMs);
    timer.unref();
    sock.on('data', onData);
    sock.once('close', onClose);
    sock.write(SERVER_PREFACE);
    sock.resume();
  });
}
