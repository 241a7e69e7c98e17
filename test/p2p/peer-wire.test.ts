// The peer protocol over real HTTP/2 on loopback: authenticated chunk requests, 401 for a wrong secret, 404 for
// unknown layers, fetch-on-behalf with singleflight on the owner (N concurrent requesters → one origin fetch),
// per-peer concurrency limits, membership marking a dead peer down within one probe timeout, and answers whose
// MACs are missing or wrong (headers, /healthz, a chunk body's trailer) refused before they are used.
import { randomBytes } from 'node:crypto';
import { createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { PeerAuth } from '../../src/p2p/auth.js';
import { realClock } from '../../src/p2p/clock.js';
import { Membership } from '../../src/p2p/membership.js';
import { PeerClient } from '../../src/p2p/peer-client.js';
import { PeerLimits } from '../../src/p2p/peer-limits.js';
import { PeerServer, type ChunkResponder } from '../../src/p2p/peer-server.js';
import { DedupeSource } from '../../src/source/dedupe.js';
import type { Digest } from '../../src/image/digest.js';
import { TableOrigin, testIndex } from './fakes.js';

const secret = Buffer.from('wire-test-cluster-secret');
const chunks = Array.from({ length: 8 }, () => randomBytes(64 * 1024));
const index = testIndex(chunks);
const table = new Map<Digest, Buffer>(index.chunks.map((c, i) => [c.digest, chunks[i]!]));
const servers: PeerServer[] = [];

const raws: Http2Server[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const r of raws.splice(0)) await new Promise((ok) => r.close(ok));
});

/** A hand-written peer that knows the secret but answers as `answer` says (a tampering or broken node). */
async function rawPeer(
  answer: (stream: ServerHttp2Stream, nonce: string, self: string) => void,
): Promise<string> {
  const auth = new PeerAuth({ secret });
  const server = createServer();
  raws.push(server);
  let self = '';
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const v = auth.verifyRequest(String(headers['x-ferry-auth']), 'GET', String(headers[':path']), [self]);
    if (!v.ok) throw new Error(`the client's request did not verify: ${v.reason}`);
    answer(stream, v.nonce, self);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  self = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return self;
}

async function serve(responder: ChunkResponder, maxConcurrent = 64): Promise<string> {
  const server = new PeerServer({
    host: '127.0.0.1',
    port: 0,
    auth: new PeerAuth({ secret }),
    limits: new PeerLimits({ maxConcurrent, requestsPerSecond: 0, clock: realClock }),
    responder,
    log: silentLogger(),
  });
  servers.push(server);
  const a = await server.listen();
  return `127.0.0.1:${a.port}`;
}

const wireReq = (i: number) => ({
  chunkDigest: index.chunks[i]!.digest,
  layerDigest: index.layerDigest,
  chunkIndex: i,
});
const opts = () => ({ signal: new AbortController().signal, onStarted: () => undefined });

describe('peer wire protocol', () => {
  it('serves a chunk to an authenticated client and refuses another secret', async () => {
    const peer = await serve({ local: (d) => Promise.resolve(table.get(d)), fetcher: () => undefined });
    const good = new PeerClient({ auth: new PeerAuth({ secret }), maxBodyBytes: 1 << 20 });
    const bad = new PeerClient({
      auth: new PeerAuth({ secret: Buffer.from('not-the-cluster-secret') }),
      maxBodyBytes: 1 << 20,
    });
    try {
      expect(await good.fetchChunk(peer, wireReq(2), opts())).toEqual(chunks[2]);
      await expect(bad.fetchChunk(peer, wireReq(2), opts())).rejects.toThrow(/HTTP 401/);
      await expect(bad.probe(peer, new AbortController().signal)).rejects.toThrow(/401/);
      expect(servers[0]!.stats().rejectedAuth).toBe(2);
    } finally {
      good.close();
      bad.close();
    }
  });

  it('refuses a request MAC made for another node (401)', async () => {
    const peer = await serve({ local: (d) => Promise.resolve(table.get(d)), fetcher: () => undefined });
    const other = await serve({ local: (d) => Promise.resolve(table.get(d)), fetcher: () => undefined });
    const auth = new PeerAuth({ secret });
    const path = '/healthz';
    const { header } = auth.signRequest(peer, 'GET', path); // made for `peer`, sent to `other`
    const res = await fetchRaw(other, path, header);
    expect(res.status).toBe(401);
    expect((await fetchRaw(peer, path, header)).status).toBe(200);
    expect(servers[1]!.stats().rejectedAuth).toBe(1);
  });

  it('refuses answers whose MACs are missing or wrong, before using them', async () => {
    const auth = new PeerAuth({ secret });
    const client = new PeerClient({ auth, maxBodyBytes: 1 << 20 });
    const bytes = chunks[3]!;
    const chunk = index.chunks[3]!.digest;
    try {
      // /healthz "ok" without a MAC, and with a MAC for another request's nonce
      const bare = await rawPeer((s) => (s.respond({ ':status': 200 }), s.end('ok')));
      await expect(client.probe(bare, new AbortController().signal)).rejects.toThrow(/response MAC/);
      const replayed = await rawPeer((s, _nonce, self) => {
        const mac = auth.signResponse({ server: self, nonce: 'ab'.repeat(12), status: 200, pending: false });
        s.respond({ ':status': 200, 'x-ferry-auth': mac });
        s.end('ok');
      });
      await expect(client.probe(replayed, new AbortController().signal)).rejects.toThrow(/response MAC/);
      // a 404 without a MAC is not a miss
      const miss = await rawPeer((s) => (s.respond({ ':status': 404 }), s.end()));
      await expect(client.fetchChunk(miss, wireReq(3), opts())).rejects.toThrow(/response MAC/);
      // good headers, but no trailer MAC over the body; then a trailer MAC for another length
      const trailer = (length: number | undefined) =>
        rawPeer((s, nonce, self) => {
          s.respond(
            {
              ':status': 200,
              'x-ferry-auth': auth.signResponse({ server: self, nonce, status: 200, pending: false }),
            },
            { waitForTrailers: true },
          );
          s.on('wantTrailers', () =>
            s.sendTrailers(
              length === undefined
                ? {}
                : { 'x-ferry-auth': auth.signBody({ server: self, nonce, chunkDigest: chunk, length }) },
            ),
          );
          s.end(bytes);
        });
      let started = 0;
      const o = { signal: new AbortController().signal, onStarted: () => started++ };
      await expect(client.fetchChunk(await trailer(undefined), wireReq(3), o)).rejects.toThrow(/trailer MAC/);
      await expect(client.fetchChunk(await trailer(bytes.length + 1), wireReq(3), o)).rejects.toThrow(
        /trailer MAC/,
      );
      expect(started).toBe(2); // the headers were authentic
      expect(await client.fetchChunk(await trailer(bytes.length), wireReq(3), o)).toEqual(bytes);
    } finally {
      client.close();
    }
  });

  it('answers 404 for a chunk of a layer it does not know', async () => {
    const peer = await serve({ local: () => Promise.resolve(undefined), fetcher: () => undefined });
    const client = new PeerClient({ auth: new PeerAuth({ secret }), maxBodyBytes: 1 << 20 });
    await expect(client.fetchChunk(peer, wireReq(0), opts())).resolves.toBeUndefined();
    client.close();
  });

  it('fetches on behalf of many concurrent requesters with one origin fetch (singleflight)', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const origin = new TableOrigin(table, () => gate);
    const dedupe = new DedupeSource({ next: origin });
    const peer = await serve({
      local: () => Promise.resolve(undefined),
      fetcher: (r) => (signal) => dedupe.fetch({ index, chunk: r.chunkIndex, priority: 'demand' }, signal),
    });
    const clients = Array.from(
      { length: 6 },
      () => new PeerClient({ auth: new PeerAuth({ secret }), maxBodyBytes: 1 << 20 }),
    );
    let started = 0;
    const all = clients.map((c) =>
      c.fetchChunk(peer, wireReq(5), { signal: new AbortController().signal, onStarted: () => started++ }),
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(started).toBe(6); // accepted before the bytes exist: requesters stop hedging
    release();
    for (const b of await Promise.all(all)) expect(b).toEqual(chunks[5]);
    expect(origin.calls).toBe(1);
    for (const c of clients) c.close();
  });

  it('limits concurrent requests per peer (503 beyond the limit)', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const peer = await serve(
      {
        local: () => Promise.resolve(undefined),
        fetcher: (r) => async () => (await gate, chunks[r.chunkIndex]!),
      },
      2,
    );
    const client = new PeerClient({ auth: new PeerAuth({ secret }), maxBodyBytes: 1 << 20 });
    const results = [0, 1, 2].map((i) =>
      client.fetchChunk(peer, wireReq(i), opts()).then(
        () => 'ok',
        (e: unknown) => (e as Error).message,
      ),
    );
    await new Promise((r) => setTimeout(r, 100));
    release();
    expect((await Promise.all(results)).sort()).toEqual(['ok', 'ok', expect.stringMatching(/HTTP 503/)]);
    client.close();
  });

  it('membership: a peer up, then dead, is marked down within one probe timeout', async () => {
    const peer = await serve({ local: () => Promise.resolve(undefined), fetcher: () => undefined });
    const client = new PeerClient({ auth: new PeerAuth({ secret }), maxBodyBytes: 1 << 20 });
    const m = new Membership({
      self: '127.0.0.1:1',
      candidates: () => Promise.resolve([peer, '127.0.0.1:1']),
      probe: (p, s) => client.probe(p, s),
      onDown: (p) => client.drop(p),
      clock: realClock,
      log: silentLogger(),
      probeIntervalMs: 100,
      probeTimeoutMs: 300,
    });
    await m.start();
    await waitFor(() => m.live().includes(peer));
    expect(m.live()).toEqual(['127.0.0.1:1', peer].sort());
    await servers.pop()!.close();
    const t0 = performance.now();
    await waitFor(() => !m.live().includes(peer));
    expect(performance.now() - t0).toBeLessThan(100 + 300 + 250);
    m.penalise('127.0.0.1:9'); // unknown peers are ignored
    m.stop();
    client.close();
  });
});

/** One GET with a given auth header, over a fresh session; the status. */
async function fetchRaw(peer: string, path: string, auth: string): Promise<{ status: number }> {
  const { connect } = await import('node:http2');
  const session = connect(`http://${peer}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':path': path, 'x-ferry-auth': auth });
      req.on('response', (h) => resolve({ status: Number(h[':status']) }));
      req.on('error', reject);
      req.end();
    });
  } finally {
    session.destroy();
  }
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
