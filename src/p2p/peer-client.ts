// The HTTP/2 (h2c) client side of the peer protocol: one session per peer, authenticated requests for a chunk
// by digest and for /healthz probes. Connection failures surface as UnavailableError; 404 is a miss.
import {
  connect,
  constants,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
} from 'node:http2';
import { AbortedError, UnavailableError } from '../errors.js';
import { AUTH_HEADER, type PeerAuth } from './auth.js';
import type { PeerChunkRequest, PeerTransport } from './peer-source.js';

export interface PeerClientOptions {
  auth: PeerAuth;
  /** Largest chunk body accepted from a peer (a peer cannot make us buffer more). */
  maxBodyBytes: number;
}

export function chunkPath(req: PeerChunkRequest): string {
  const path = `/chunk/${req.chunkDigest}?layer=${encodeURIComponent(req.layerDigest)}&i=${req.chunkIndex}`;
  return req.cacheOnly === true ? `${path}&cached=1` : path;
}

export class PeerClient implements PeerTransport {
  private readonly o: PeerClientOptions;
  private readonly sessions = new Map<string, ClientHttp2Session>();

  constructor(options: PeerClientOptions) {
    this.o = options;
  }

  fetchChunk(
    peer: string,
    req: PeerChunkRequest,
    opts: { signal: AbortSignal; onStarted: () => void },
  ): Promise<Buffer | undefined> {
    return this.get(peer, chunkPath(req), opts.signal, opts.onStarted);
  }

  async probe(peer: string, signal: AbortSignal): Promise<void> {
    const body = await this.get(peer, '/healthz', signal, () => undefined);
    if (body === undefined) throw new UnavailableError(`peer ${peer}: /healthz not found`);
  }

  /** Drops the connection to `peer`: its in-flight streams fail now instead of hanging. */
  drop(peer: string): void {
    const s = this.sessions.get(peer);
    this.sessions.delete(peer);
    s?.destroy();
  }

  close(): void {
    for (const peer of [...this.sessions.keys()]) this.drop(peer);
  }

  private session(peer: string): ClientHttp2Session {
    const existing = this.sessions.get(peer);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const s = connect(`http://${peer}`, { peerMaxConcurrentStreams: 1000 });
    s.on('error', () => undefined); // reported through the streams that were using it
    s.on('close', () => {
      if (this.sessions.get(peer) === s) this.sessions.delete(peer);
    });
    s.unref();
    this.sessions.set(peer, s);
    return s;
  }

  private get(
    peer: string,
    path: string,
    signal: AbortSignal,
    onStarted: () => void,
  ): Promise<Buffer | undefined> {
    if (signal.aborted) return Promise.reject(new AbortedError(`peer ${peer}${path}: aborted`));
    return new Promise((resolve, reject) => {
      const session = this.session(peer);
      const stream = session.request({
        ':method': 'GET',
        ':path': path,
        [AUTH_HEADER]: this.o.auth.sign('GET', path),
      });
      const chunks: Buffer[] = [];
      let size = 0;
      let status = 0;
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = (): void => {
        stream.close(constants.NGHTTP2_CANCEL);
        settle(() => reject(new AbortedError(`peer ${peer}${path}: aborted`)));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('response', (headers: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
        status = headers[':status'] ?? 0;
        if (status === 200) onStarted();
      });
      stream.on('data', (b: Buffer) => {
        size += b.length;
        if (size > this.o.maxBodyBytes) {
          stream.close(constants.NGHTTP2_CANCEL);
          settle(() =>
            reject(new UnavailableError(`peer ${peer}${path}: body over ${this.o.maxBodyBytes} bytes`)),
          );
          return;
        }
        chunks.push(b);
      });
      stream.on('end', () => {
        if (status === 200) settle(() => resolve(Buffer.concat(chunks, size)));
        else if (status === 404) settle(() => resolve(undefined));
        else settle(() => reject(new UnavailableError(`peer ${peer}${path}: HTTP ${status}`)));
      });
      stream.on('close', () => {
        settle(() =>
          reject(new UnavailableError(`peer ${peer}${path}: stream closed (code ${stream.rstCode ?? '?'})`)),
        );
      });
      stream.on('error', (e: Error) =>
        settle(() => reject(new UnavailableError(`peer ${peer}${path}: ${e.message}`, { cause: e }))),
      );
      stream.end();
    });
  }
}
