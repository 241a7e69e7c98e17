// Range reads against real HTTP servers: 206 (never more than asked), 200 whole body, 416, short bodies,
// cross-host redirects (Authorization must not follow; asserted on the storage side), redirect caching and
// re-resolve on 403.
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { StaticCredentials } from '../../src/registry/credentials.js';
import { isHandedOff, type BlobReader } from '../../src/image/blob-reader.js';
import type { RegistryBlobReader } from '../../src/registry/blob-reader.js';
import { parseReference } from '../../src/image/reference.js';
import { sha256 } from '../../src/image/digest.js';
import { json, startServer, type Seen, type TestServer } from './test-server.js';
import { testClient } from './fixtures.js';

// Compile-time proof that the registry reader is a BlobReader (registry/ may not import source/).
const isBlobReader: RegistryBlobReader extends BlobReader ? true : never = true;

const BLOB = randomBytes(100_000);
const DIGEST = sha256(BLOB);
const BASIC = `Basic ${Buffer.from('u:p').toString('base64')}`;
const creds = (host: string) =>
  new StaticCredentials({ credentials: { [host]: { username: 'u', password: 'p' } } });

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Serves BLOB honouring a single Range, like a well-behaved server. */
function serveRange(req: Seen, res: ServerResponse, data = BLOB): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'content-length': String(data.length) });
    return void res.end();
  }
  if (m === null) {
    res.writeHead(200, { 'content-length': String(data.length) });
    return void res.end(data);
  }
  const start = Number(m[1]);
  const last = Math.min(Number(m[2]), data.length - 1);
  if (start >= data.length) {
    res.writeHead(416, { 'content-range': `bytes */${data.length}` });
    return void res.end();
  }
  res.writeHead(206, {
    'content-range': `bytes ${start}-${last}/${data.length}`,
    'content-length': String(last - start + 1),
  });
  res.end(data.subarray(start, last + 1));
}

async function registry(handler: (req: Seen, res: ServerResponse) => void) {
  const s = await startServer(handler);
  servers.push(s);
  return { server: s, ref: parseReference(`${s.host}/a/b:t`) };
}

describe('RegistryBlobReader', () => {
  it('is a BlobReader', () => {
    expect(isBlobReader).toBe(true);
  });

  it('reads ranges with 206 and learns the size from HEAD', async () => {
    const { server, ref } = await registry(serveRange);
    const client = testClient();
    const reader = client.blobReader(ref, DIGEST);
    expect(await reader.size()).toBe(BLOB.length);
    expect((await reader.readRange(10, 5000)).equals(BLOB.subarray(10, 5000))).toBe(true);
    expect((await reader.readRange(99_999, 100_000)).equals(BLOB.subarray(99_999))).toBe(true);
    expect((await reader.readRange(7, 7)).length).toBe(0);
    expect(server.seen.filter((s) => s.method === 'GET').map((s) => s.headers.range)).toEqual([
      'bytes=10-4999',
      'bytes=99999-99999',
    ]);
    await expect(reader.readRange(5, 100_001)).rejects.toMatchObject({ code: 'FORMAT' });
    await client.close();
  });

  it('slices a 200 whole-body answer from a server that ignores Range', async () => {
    const { ref } = await registry((_req, res) => {
      res.writeHead(200, { 'content-length': String(BLOB.length) });
      res.end(BLOB);
    });
    const client = testClient();
    const reader = client.blobReader(ref, DIGEST);
    expect((await reader.readRange(1000, 1010)).equals(BLOB.subarray(1000, 1010))).toBe(true);
    expect(await reader.size()).toBe(BLOB.length); // learnt from the 200's Content-Length
    await client.close();
  });

  it('turns 416 into a FORMAT error naming the blob', async () => {
    const { ref } = await registry((_req, res) => {
      res.writeHead(416, { 'content-range': `bytes */${BLOB.length}` });
      res.end();
    });
    const client = testClient();
    await expect(client.blobReader(ref, DIGEST).readRange(200_000, 200_010)).rejects.toMatchObject({
      code: 'FORMAT',
      message: new RegExp(DIGEST),
    });
    await client.close();
  });

  it('reports a short body as UNAVAILABLE', async () => {
    const { ref } = await registry((_req, res) => {
      // Claims 100 bytes, sends 40 and closes the connection.
      res.writeHead(206, { 'content-range': `bytes 0-99/${BLOB.length}`, 'content-length': '100' });
      res.write(BLOB.subarray(0, 40));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const client = testClient();
    await expect(client.blobReader(ref, DIGEST).readRange(0, 100)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    const { ref: ref2 } = await registry((_req, res) => {
      // A consistent but truncated 206: Content-Range says 0-49 for a request of 0-99.
      res.writeHead(206, { 'content-range': `bytes 0-49/${BLOB.length}`, 'content-length': '50' });
      res.end(BLOB.subarray(0, 50));
    });
    await expect(client.blobReader(ref2, DIGEST).readRange(0, 100)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: /short read/,
    });
    await client.close();
  });

  it('refuses a 206 whose Content-Range is larger than asked, without serving it', async () => {
    const big = randomBytes(1024 * 1024);
    const { ref } = await registry((_req, res) => {
      // Honest about its Content-Range, but that range is the whole MiB, not the 10 bytes asked for.
      res.writeHead(206, {
        'content-range': `bytes 0-${big.length - 1}/${big.length}`,
        'content-length': String(big.length),
      });
      res.end(big);
    });
    const client = testClient();
    await expect(client.blobReader(ref, DIGEST).readRange(0, 10)).rejects.toMatchObject({
      code: 'FORMAT',
      message: /answered bytes 0-1048575 to a request for bytes 0-9/,
    });
    await client.close();
  });

  it('refuses a 206 body longer than its (requested) Content-Range', async () => {
    const { ref } = await registry((_req, res) => {
      // No Content-Length: the body is chunked and goes on past the range it claims.
      res.writeHead(206, { 'content-range': `bytes 0-9/${BLOB.length}` });
      res.end(BLOB);
    });
    const client = testClient();
    await expect(client.blobReader(ref, DIGEST).readRange(0, 10)).rejects.toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
    });
    await client.close();
  });

  it('reads a 206 body that arrives in many pieces into one buffer of its own, handed off', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 123);
    const { ref } = await registry((_req, res) => {
      res.writeHead(206, {
        'content-range': `bytes 0-${big.length - 1}/${big.length}`,
        'content-length': String(big.length),
      });
      // Written in 64 KiB pieces: the reader sees many socket reads.
      for (let at = 0; at < big.length; at += 64 * 1024) res.write(big.subarray(at, at + 64 * 1024));
      res.end();
    });
    const client = testClient();
    const got = await client.blobReader(ref, sha256(big)).readRange(0, big.length);
    expect(got.equals(big)).toBe(true);
    // Exactly its bytes in its own ArrayBuffer: a decode worker can take it without a copy.
    expect(got.byteOffset).toBe(0);
    expect(got.buffer.byteLength).toBe(big.length);
    expect(isHandedOff(got)).toBe(true);
    await client.close();
  });

  it('fails a 206 body that stalls with DEADLINE_EXCEEDED, and one the caller aborts mid-body with ABORTED', async () => {
    const { ref } = await registry((_req, res) => {
      res.writeHead(206, { 'content-range': `bytes 0-99/${BLOB.length}`, 'content-length': '100' });
      res.write(BLOB.subarray(0, 40)); // and nothing more
    });
    const slow = testClient({ requestTimeoutMs: 300 });
    await expect(slow.blobReader(ref, DIGEST).readRange(0, 100)).rejects.toMatchObject({
      code: 'DEADLINE_EXCEEDED',
    });
    await slow.close();
    const client = testClient({ requestTimeoutMs: 10_000 });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 100);
    const t0 = Date.now();
    await expect(client.blobReader(ref, DIGEST).readRange(0, 100, ctl.signal)).rejects.toMatchObject({
      code: 'ABORTED',
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    await client.close();
  });

  it('rejects a 206 for the wrong offset', async () => {
    const { ref } = await registry((_req, res) => {
      res.writeHead(206, { 'content-range': `bytes 5-14/${BLOB.length}`, 'content-length': '10' });
      res.end(BLOB.subarray(5, 15));
    });
    const client = testClient();
    await expect(client.blobReader(ref, DIGEST).readRange(0, 10)).rejects.toMatchObject({ code: 'FORMAT' });
    await client.close();
  });

  it('follows a redirect to storage without Authorization, caches it, and re-resolves once on 403', async () => {
    let expired = false;
    const storage = await startServer((req, res) => {
      if (expired && req.query.get('sig') === 'old') return json(res, 403, { error: 'expired' });
      serveRange(req, res);
    });
    servers.push(storage);
    const { server, ref } = await registry((req, res) => {
      if (req.headers.authorization !== BASIC)
        return json(res, 401, {}, { 'www-authenticate': 'Basic realm="r"' });
      res.writeHead(307, { location: `${storage.origin}/bucket/blob?sig=${expired ? 'new' : 'old'}` });
      res.end();
    });
    const client = testClient({ credentials: creds(server.host) });
    const reader = client.blobReader(ref, DIGEST, BLOB.length);
    expect((await reader.readRange(0, 100)).equals(BLOB.subarray(0, 100))).toBe(true);
    expect((await reader.readRange(500, 600)).equals(BLOB.subarray(500, 600))).toBe(true);
    // The second read went straight to storage.
    expect(server.seen.filter((s) => s.method === 'GET')).toHaveLength(2); // 401 + 307
    expired = true;
    expect((await reader.readRange(700, 800)).equals(BLOB.subarray(700, 800))).toBe(true);
    expect(server.seen.filter((s) => s.method === 'GET')).toHaveLength(3);
    expect(storage.seen.map((s) => s.query.get('sig'))).toEqual(['old', 'old', 'old', 'new']);
    for (const s of storage.seen) expect(s.headers.authorization).toBeUndefined();
    expect(server.seen.at(-1)?.headers.authorization).toBe(BASIC);
    await client.close();
  });

  it('keeps Authorization on a redirect within the registry host', async () => {
    const { server, ref } = await registry((req, res) => {
      if (req.headers.authorization !== BASIC)
        return json(res, 401, {}, { 'www-authenticate': 'Basic realm="r"' });
      if (req.path.startsWith('/v2/')) {
        res.writeHead(302, { location: '/internal/blob' });
        return void res.end();
      }
      serveRange(req, res);
    });
    const client = testClient({ credentials: creds(server.host) });
    expect((await client.blobReader(ref, DIGEST).readRange(3, 9)).equals(BLOB.subarray(3, 9))).toBe(true);
    await client.close();
  });

  it('finds the size from Content-Range when HEAD is redirected', async () => {
    const storage = await startServer(serveRange);
    servers.push(storage);
    const { ref } = await registry((_req, res) => {
      res.writeHead(307, { location: `${storage.origin}/b` });
      res.end();
    });
    const client = testClient();
    expect(await client.blobReader(ref, DIGEST).size()).toBe(BLOB.length);
    await client.close();
  });

  it('streams the whole blob and verifies it', async () => {
    const { ref } = await registry(serveRange);
    const client = testClient();
    const parts: Buffer[] = [];
    for await (const c of await client.blobReader(ref, DIGEST).stream()) parts.push(c);
    expect(Buffer.concat(parts).equals(BLOB)).toBe(true);
    const wrong = client.blobReader(ref, sha256('something else'));
    await expect(async () => {
      for await (const c of await wrong.stream()) expect(c.length).toBeGreaterThan(0);
    }).rejects.toMatchObject({ code: 'INTEGRITY' });
    expect(await client.fetchBlob(ref, DIGEST, BLOB.length)).toEqual(BLOB);
    await expect(client.fetchBlob(ref, DIGEST, 1000)).rejects.toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
    await expect(client.fetchBlob(ref, sha256('x'), BLOB.length)).rejects.toMatchObject({
      code: 'INTEGRITY',
    });
    await client.close();
  });

  it('maps 404 to NOT_FOUND', async () => {
    const { ref } = await registry((_req, res) =>
      json(res, 404, { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }),
    );
    const client = testClient();
    await expect(client.blobReader(ref, DIGEST).readRange(0, 1)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: /BLOB_UNKNOWN/,
    });
    await expect(client.blobReader(ref, DIGEST).size()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await client.close();
  });
});
