// The HTTP/2 (h2c) client side of the peer protocol: one session per peer, requests MAC'd for that peer, for a
// chunk by digest and for /healthz probes. An answer is used only when its MACs check (headers bound to our
// nonce; a chunk body's trailer to its digest and length): else IntegrityError. Connection failures surface as
// UnavailableError; an authenticated 404 is a miss.
import {
  connect,
  constants,
  type ClientHttp2Session,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
} from 'node:http2';
import type { Digest } from '../image/digest.js';
import { AbortedError, IntegrityError, UnavailableError } from '../errors.js';
import { AUTH_HEADER, PENDING_HEADER, type PeerAuth } from './auth.js';
import type { PeerIndexRequest } from '../index/source-peer.js';
import { indexPath } from './index-wire.js';
import type { PeerChunkRequest, PeerTransport } from './peer-source.js';

export interface PeerClientOptions {
  auth: PeerAuth;
  /** Largest chunk body accepted from a peer (a peer cannot make us buffer more). */
  maxBodyBytes: number;
  /** Largest serialized index accepted from a peer (default 512 MiB, the artifact cap). */
  maxIndexBytes?: number;
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
    return this.get(peer, chunkPath(req), opts.signal, opts.onStarted, req.chunkDigest);
  }

  /** The serialized index `peer` (the layer's owner) built, or undefined on an authenticated 404. */
  fetchIndex(peer: string, req: PeerIndexRequest, signal: AbortSignal): Promise<Buffer | undefined> {
    return this.get(
      peer,
      indexPath(req),
      signal,
      () => undefined,
      req.layer.digest,
      this.o.maxIndexBytes ?? 512 << 20,
    );
  }

  /** Resolves when `peer` answers an authenticated /healthz with a response MAC'd for this request. */
  async probe(peer: string, signal: AbortSignal): Promise<void> {
    const body = await this.get(peer, '/healthz', signal, () => undefined);
    if (body?.toString() !== 'ok') throw new UnavailableError(`peer ${peer}: /healthz did not answer ok`);
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

  /**
   * `chunkDigest` set: a chunk (or index: the layer digest) request, whose 200 body must come with a valid
   * trailer MAC, and is at most `maxBytes`.
   */
  private get(
    peer: string,
    path: string,
    signal: AbortSignal,
    onStarted: () => void,
    chunkDigest?: Digest,
    maxBytes = this.o.maxBodyBytes,
  ): Promise<Buffer | undefined> {
    if (signal.aborted) return Promise.reject(new AbortedError(`peer ${peer}${path}: aborted`));
    return new Promise((resolve, reject) => {
      const session = this.session(peer);
      const { header, nonce } = this.o.auth.signRequest(peer, 'GET', path);
      const stream = session.request({ ':method': 'GET', ':path': path, [AUTH_HEADER]: header });
      const chunks: Buffer[] = [];
      let size = 0;
      let status = 0;
      let authentic = false;
      let bodyAuthentic = false;
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
      const refuse = (what: string): void => {
        stream.close(constants.NGHTTP2_CANCEL);
        settle(() => reject(new IntegrityError(`peer ${peer}${path}: ${what}`)));
      };
      stream.on('response', (headers: IncomingHttpHeaders & IncomingHttpStatusHeader) => {
        status = headers[':status'] ?? 0;
        if (status !== 200 && status !== 404) return; // refused or busy: not used, whoever sent it
        const pending = headers[PENDING_HEADER] === '1';
        authentic = this.o.auth.verifyResponse(text(headers[AUTH_HEADER]), {
          server: peer,
          nonce,
          status,
          pending,
        });
        if (!authentic) return refuse(`HTTP ${status} without a valid response MAC`);
        if (status === 200) onStarted();
      });
      stream.on('trailers', (trailers: IncomingHttpHeaders) => {
        if (chunkDigest === undefined) return;
        const facts = { server: peer, nonce, chunkDigest, length: size };
        bodyAuthentic = this.o.auth.verifyBody(text(trailers[AUTH_HEADER]), facts);
      });
      stream.on('data', (b: Buffer) => {
        size += b.length;
        if (size > maxBytes) {
          stream.close(constants.NGHTTP2_CANCEL);
          settle(() => reject(new UnavailableError(`peer ${peer}${path}: body over ${maxBytes} bytes`)));
          return;
        }
        chunks.push(b);
      });
      stream.on('end', () => {
        if (status === 200 && chunkDigest !== undefined && !bodyAuthentic)
          refuse(`a ${size}-byte body without a valid trailer MAC`);
        else if (status === 200 && authentic) settle(() => resolve(Buffer.concat(chunks, size)));
        else if (status === 404 && authentic) settle(() => resolve(undefined));
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

function text(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
