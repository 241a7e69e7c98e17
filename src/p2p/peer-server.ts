// The HTTP/2 (h2c) server side of the peer protocol. GET /chunk/<digest>?layer=<digest>&i=<n> answers from the
// local store, or — when this node knows the layer — accepts at once (headers) and fetches on the requester's
// behalf through the node's own singleflight stack, so the registry sees one fetch per chunk. Unknown: 404.
// Every request carries an HMAC of the cluster secret bound to this node (auth.ts); every answer to an
// authenticated request is MAC'd back (headers, and a trailer over a chunk body). Per-peer limits apply.
import {
  createServer,
  constants,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { isDigest, type Digest } from '../image/digest.js';
import { AUTH_HEADER, PENDING_HEADER, type PeerAuth } from './auth.js';
import { peerId } from './discovery.js';
import type { PeerLimits } from './peer-limits.js';
import type { PeerIndexRequest } from '../index/source-peer.js';
import { parseIndexPath } from './index-wire.js';
import type { PeerChunkRequest } from './peer-source.js';

export interface ChunkResponder {
  /** Bytes this node already holds (memory or disk), or undefined. */
  local(digest: Digest, signal: AbortSignal): Promise<Buffer | undefined>;
  /** When this node can fetch the chunk for others (it knows the layer's index): the fetch; else undefined. */
  fetcher(req: PeerChunkRequest): ((signal: AbortSignal) => Promise<Buffer>) | undefined;
  /** The serialized index of a layer this node owns, built once from the blob; absent: index requests 404. */
  index?: ((req: PeerIndexRequest, signal: AbortSignal) => Promise<Buffer>) | undefined;
}

export interface PeerServerOptions {
  host: string;
  port: number;
  /**
   * The ids (host:port) peers reach this node by: requests MAC'd for any other node are refused. Default: the
   * address bound (a wildcard address matches no request, so a wildcard listener must name its ids).
   */
  selfIds?: readonly string[];
  auth: PeerAuth;
  limits: PeerLimits;
  responder: ChunkResponder;
  log: Logger;
}

export interface PeerServerStats {
  served: { chunks: number; bytes: number };
  fetchedForPeers: number;
  notFound: number;
  rejectedAuth: number;
  limited: number;
  /** Layer indexes this node sent to peers that asked it, as the layers' owner. */
  indexesServed: number;
}

export class PeerServer {
  private readonly o: PeerServerOptions;
  private server: Http2Server | undefined;
  private readonly counters: PeerServerStats = {
    served: { chunks: 0, bytes: 0 },
    fetchedForPeers: 0,
    notFound: 0,
    rejectedAuth: 0,
    limited: 0,
    indexesServed: 0,
  };
  private readonly authWarned = new Set<string>();
  private readonly sessions = new Set<ServerHttp2Session>();
  private selfIds: readonly string[] = [];

  constructor(options: PeerServerOptions) {
    this.o = options;
  }

  async listen(): Promise<{ host: string; port: number }> {
    const server = createServer({ peerMaxConcurrentStreams: 1000 });
    server.on('stream', (stream, headers) => void this.handle(stream, headers));
    server.on('sessionError', () => undefined);
    server.on('session', (session) => {
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    this.selfIds = this.o.selfIds ?? [peerId(a.address, a.port)];
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    // Peers keep sessions open; they would hold close() (and the process) forever. They reconnect elsewhere.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sessions) s.destroy();
    await closed;
  }

  stats(): PeerServerStats {
    const c = this.counters;
    return { ...c, served: { ...c.served } };
  }

  private async handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    stream.on('error', () => undefined);
    const method = headers[':method'] ?? '';
    const path = headers[':path'] ?? '';
    const remote = stream.session?.socket.remoteAddress ?? 'unknown';
    const authHeader = headers[AUTH_HEADER];
    const verdict = this.o.auth.verifyRequest(
      typeof authHeader === 'string' ? authHeader : undefined,
      method,
      path,
      this.selfIds,
    );
    if (!verdict.ok) {
      this.counters.rejectedAuth++;
      const key = `${remote}/${verdict.reason}`;
      if (!this.authWarned.has(key)) {
        this.authWarned.add(key);
        this.o.log.warn(
          { remote, reason: verdict.reason },
          `p2p: rejected a request from ${remote} (${verdict.reason})`,
        );
      }
      return this.reply(stream, 401);
    }
    const answer: Answer = { server: verdict.self, nonce: verdict.nonce };
    if (path === '/healthz') return this.reply(stream, 200, 'ok', answer);
    if (path.startsWith('/index/')) return this.serveIndex(stream, method, path, remote, answer);
    const req = parseChunkPath(path);
    if (req === undefined || method !== 'GET') return this.reply(stream, 400, '', answer);
    const admitted = this.admit(stream, remote, answer);
    if (admitted === undefined) return;
    const ac = new AbortController();
    stream.once('close', () => ac.abort());
    // The body's MAC goes in a trailer: a pending answer's headers leave before its bytes exist.
    let body: Buffer | undefined;
    stream.on('wantTrailers', () => {
      const mac = this.o.auth.signBody({
        ...answer,
        chunkDigest: req.chunkDigest,
        length: body?.length ?? -1,
      });
      stream.sendTrailers({ [AUTH_HEADER]: mac });
    });
    const respond200 = (pending: boolean): void =>
      stream.respond(
        {
          ':status': 200,
          [AUTH_HEADER]: this.o.auth.signResponse({ ...answer, status: 200, pending }),
          ...(pending ? { [PENDING_HEADER]: '1' } : {}),
        },
        { waitForTrailers: true },
      );
    try {
      let bytes = await this.o.responder.local(req.chunkDigest, ac.signal);
      if (bytes === undefined) {
        const fetch = req.cacheOnly === true ? undefined : this.o.responder.fetcher(req);
        if (fetch === undefined) {
          this.counters.notFound++;
          return this.reply(stream, 404, '', answer);
        }
        if (stream.closed) return;
        respond200(true); // accepted: the requester stops hedging
        this.counters.fetchedForPeers++;
        bytes = await fetch(ac.signal);
      } else if (!stream.closed) {
        respond200(false);
      }
      if (stream.closed) return;
      this.counters.served.chunks++;
      this.counters.served.bytes += bytes.length;
      body = bytes;
      stream.end(bytes);
    } catch (e) {
      if (!ac.signal.aborted) {
        this.o.log.debug({ err: e, digest: req.chunkDigest }, 'p2p: fetch for a peer failed');
      }
      if (!stream.headersSent && !stream.closed) this.reply(stream, 503, '', answer);
      else if (!stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    } finally {
      admitted();
    }
  }

  /**
   * An index request: accepted at once (pending), then the index this node builds, or holds, for the layer. A
   * build streams the whole layer, so the requester waits on a pending answer rather than hedging elsewhere.
   */
  private async serveIndex(
    stream: ServerHttp2Stream,
    method: string,
    path: string,
    remote: string,
    answer: Answer,
  ): Promise<void> {
    const req = parseIndexPath(path);
    const build = this.o.responder.index;
    if (req === undefined || method !== 'GET') return this.reply(stream, 400, '', answer);
    if (build === undefined) return this.reply(stream, 404, '', answer);
    const admitted = this.admit(stream, remote, answer);
    if (admitted === undefined) return;
    const ac = new AbortController();
    stream.once('close', () => ac.abort());
    let body: Buffer | undefined;
    stream.on('wantTrailers', () => {
      const facts = { ...answer, chunkDigest: req.layer.digest, length: body?.length ?? -1 };
      stream.sendTrailers({ [AUTH_HEADER]: this.o.auth.signBody(facts) });
    });
    try {
      stream.respond(
        {
          ':status': 200,
          [AUTH_HEADER]: this.o.auth.signResponse({ ...answer, status: 200, pending: true }),
          [PENDING_HEADER]: '1',
        },
        { waitForTrailers: true },
      );
      body = await build(req, ac.signal);
      if (stream.closed) return;
      this.counters.indexesServed++;
      stream.end(body);
    } catch (e) {
      if (!ac.signal.aborted)
        this.o.log.warn({ err: e, layer: req.layer.digest }, 'p2p: index for a peer failed');
      if (!stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    } finally {
      admitted();
    }
  }

  /** The per-peer limits: a release function, or undefined when the request was turned away (503/429). */
  private admit(stream: ServerHttp2Stream, remote: string, answer: Answer): (() => void) | undefined {
    const admitted = this.o.limits.admit(remote);
    if (admitted !== 'busy' && admitted !== 'rate') return admitted;
    this.counters.limited++;
    this.reply(stream, admitted === 'busy' ? 503 : 429, '', answer);
    return undefined;
  }

  /** A short answer; MAC'd when the request was authenticated (`answer`), bare for a refused one. */
  private reply(stream: ServerHttp2Stream, status: number, body = '', answer?: Answer): void {
    if (stream.closed) return;
    stream.respond({
      ':status': status,
      ...(answer !== undefined
        ? { [AUTH_HEADER]: this.o.auth.signResponse({ ...answer, status, pending: false }) }
        : {}),
    });
    stream.end(body);
  }
}

/** Who answers, to which request: what every response MAC is bound to. */
interface Answer {
  server: string;
  nonce: string;
}

function parseChunkPath(path: string): PeerChunkRequest | undefined {
  const m = /^\/chunk\/([a-z0-9]+:[0-9a-f]+)\?layer=([^&]+)&i=(\d{1,9})(&cached=1)?$/.exec(path);
  if (m === null) return undefined;
  const chunkDigest = m[1]!;
  let layerDigest: string;
  try {
    layerDigest = decodeURIComponent(m[2]!);
  } catch {
    return undefined;
  }
  if (!isDigest(chunkDigest) || !isDigest(layerDigest)) return undefined;
  return {
    chunkDigest,
    layerDigest,
    chunkIndex: Number(m[3]),
    ...(m[4] !== undefined ? { cacheOnly: true } : {}),
  };
}
