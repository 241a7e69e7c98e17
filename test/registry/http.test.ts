// Transport behaviour against real servers: retries (503, 429 + Retry-After, refused connections), deadlines,
// aborts and the per-host concurrency limit.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { parseReference } from '../../src/image/reference.js';
import { MediaType } from '../../src/image/manifest.js';
import { parseRetryAfterMs } from '../../src/registry/retry.js';
import { Semaphore } from '../../src/registry/semaphore.js';
import { json, startServer, type TestServer } from './test-server.js';
import { MANIFEST, MANIFEST_DIGEST, testClient } from './fixtures.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function server(handler: Parameters<typeof startServer>[0]) {
  const s = await startServer(handler);
  servers.push(s);
  return { s, ref: parseReference(`${s.host}/a/b:t`) };
}

describe('retries', () => {
  it('retries 503 then succeeds', async () => {
    let n = 0;
    const { s, ref } = await server((_req, res) => {
      if (++n <= 2) return json(res, 503, { errors: [] });
      res.writeHead(200, { 'content-type': MediaType.ociManifest });
      res.end(MANIFEST);
    });
    const client = testClient({ retries: 3 });
    expect((await client.fetchManifest(ref)).digest).toBe(MANIFEST_DIGEST);
    expect(s.seen).toHaveLength(3);
    await client.close();
  });

  it('gives up after the retry budget with UNAVAILABLE', async () => {
    const { s, ref } = await server((_req, res) => json(res, 502, {}));
    const client = testClient({ retries: 2 });
    await expect(client.fetchManifest(ref)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: /HTTP 502/,
    });
    expect(s.seen).toHaveLength(3);
    await client.close();
  });

  it('honours Retry-After on 429, cut to the cap', async () => {
    let n = 0;
    const { ref } = await server((_req, res) => {
      if (++n === 1) return json(res, 429, {}, { 'retry-after': '1' });
      res.writeHead(200, { 'content-type': MediaType.ociManifest });
      res.end(MANIFEST);
    });
    const slow = testClient({ retries: 1 });
    let t0 = Date.now();
    await slow.fetchManifest(ref);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    n = 0;
    const capped = testClient({ retries: 1, retryAfterCapMs: 50 });
    t0 = Date.now();
    await capped.fetchManifest(ref);
    expect(Date.now() - t0).toBeLessThan(800);
    await Promise.all([slow.close(), capped.close()]);
  });

  it('does not retry a 404', async () => {
    const { s, ref } = await server((_req, res) =>
      json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'nope' }] }),
    );
    const client = testClient({ retries: 3 });
    await expect(client.fetchManifest(ref)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: /MANIFEST_UNKNOWN/,
    });
    expect(s.seen).toHaveLength(1);
    await client.close();
  });

  it('retries refused connections, then UNAVAILABLE', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const client = testClient({ retries: 2 });
    await expect(client.fetchManifest(parseReference(`127.0.0.1:${port}/a/b:t`))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    await client.close();
  });

  it('parses Retry-After forms', () => {
    expect(parseRetryAfterMs('3')).toBe(3000);
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
    expect(parseRetryAfterMs('soon')).toBeUndefined();
    expect(parseRetryAfterMs(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
  });
});

describe('deadlines and aborts', () => {
  it('fails DEADLINE_EXCEEDED on a server that never answers, without retrying it', async () => {
    const { s, ref } = await server(() => undefined);
    const client = testClient({ requestTimeoutMs: 200, retries: 2 });
    const t0 = Date.now();
    await expect(client.fetchManifest(ref)).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(s.seen).toHaveLength(1);
    await client.close();
  });

  it('fails DEADLINE_EXCEEDED when the body stalls', async () => {
    const { ref } = await server((_req, res) => {
      res.writeHead(200, {
        'content-type': MediaType.ociManifest,
        'content-length': String(MANIFEST.length),
      });
      res.write(MANIFEST.subarray(0, 10));
    });
    const client = testClient({ requestTimeoutMs: 200 });
    await expect(client.fetchManifest(ref)).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await client.close();
  });

  it('fails ABORTED when the caller aborts, before or during the request', async () => {
    const { ref } = await server(() => undefined);
    const client = testClient({ requestTimeoutMs: 10_000 });
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 50);
    const t0 = Date.now();
    await expect(client.fetchManifest(ref, ctl.signal)).rejects.toMatchObject({ code: 'ABORTED' });
    expect(Date.now() - t0).toBeLessThan(2000);
    await expect(client.fetchManifest(ref, AbortSignal.abort())).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(
      client.blobReader(ref, MANIFEST_DIGEST, 10).readRange(0, 5, AbortSignal.abort()),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    await client.close();
  });

  it('close() fails a stalled request and later ones with UNAVAILABLE at once, not after the timeout', async () => {
    const { ref } = await server((_req, res) => {
      res.writeHead(200, {
        'content-type': MediaType.ociManifest,
        'content-length': String(MANIFEST.length),
      });
      res.write(MANIFEST.subarray(0, 10));
    });
    const client = testClient({ requestTimeoutMs: 30_000 });
    const stalled = client.fetchManifest(ref);
    stalled.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await client.close();
    // UNAVAILABLE (EIO to a FUSE read), not ABORTED: a reader would retry an EINTR forever.
    await expect(stalled).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(client.fetchManifest(ref)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('concurrency', () => {
  it('limits requests in flight per host', async () => {
    let inFlight = 0;
    let peak = 0;
    const { ref } = await server((_req, res) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': MediaType.ociManifest });
        res.end(MANIFEST);
      }, 30);
    });
    const client = testClient({ maxConcurrencyPerHost: 2 });
    await Promise.all(Array.from({ length: 8 }, () => client.fetchManifest(ref)));
    expect(peak).toBe(2);
    await client.close();
  });

  it('semaphore hands permits over in order and can be aborted while waiting', async () => {
    const sem = new Semaphore({ permits: 1 });
    const release = await sem.acquire();
    const order: number[] = [];
    const a = sem.acquire().then((r) => {
      order.push(1);
      r();
    });
    const ctl = new AbortController();
    const b = sem.acquire(ctl.signal);
    const c = sem.acquire().then((r) => {
      order.push(3);
      r();
    });
    ctl.abort();
    await expect(b).rejects.toMatchObject({ code: 'ABORTED' });
    release();
    release(); // idempotent
    await Promise.all([a, c]);
    expect(order).toEqual([1, 3]);
    expect(sem.waiting).toBe(0);
  });
});
