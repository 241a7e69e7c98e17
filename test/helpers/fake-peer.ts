// Hand-written P2P peers for tests: they know the cluster secret and answer probes as a real node does, but
// answer chunk requests as told (never, with a forged MAC, or not at all) and record the request headers
// they receive (a captured MAC to replay elsewhere).
import { createServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { PeerAuth } from '../../src/p2p/auth.js';

/** How a fake answers an authenticated chunk request (`nonce` and `self`: what a real answer's MAC binds). */
export type ChunkAnswer = (
  stream: ServerHttp2Stream,
  path: string,
  req: { nonce: string; self: string },
) => void;

export interface FakePeer {
  readonly id: string;
  /** Every x-ferry-auth request header received, with its path. */
  readonly captured: Array<{ path: string; auth: string }>;
  /** Chunk requests received. */
  chunkRequests: number;
  close(): Promise<void>;
}

export async function startFakePeer(secret: string, onChunk: ChunkAnswer): Promise<FakePeer> {
  const auth = new PeerAuth({ secret: Buffer.from(secret) });
  const server: Http2Server = createServer();
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => (sessions.add(s), s.on('close', () => sessions.delete(s))));
  const peer = {
    id: '',
    captured: [] as Array<{ path: string; auth: string }>,
    chunkRequests: 0,
    close: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sessions) s.destroy();
      await closed;
    },
  };
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    const header = String(headers['x-ferry-auth']);
    peer.captured.push({ path, auth: header });
    const v = auth.verifyRequest(header, 'GET', path, [peer.id]);
    if (!v.ok) {
      stream.respond({ ':status': 401 });
      stream.end();
      return;
    }
    if (path === '/healthz') {
      const mac = auth.signResponse({ server: v.self, nonce: v.nonce, status: 200, pending: false });
      stream.respond({ ':status': 200, 'x-ferry-auth': mac });
      stream.end('ok');
      return;
    }
    peer.chunkRequests++;
    onChunk(stream, path, { nonce: v.nonce, self: v.self });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  peer.id = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return peer;
}
