// What a hostile or misconfigured registry cannot make the client do, against real HTTP(S) servers: follow an
// https redirect down to plain http, or hand the registry's Authorization to an upload Location elsewhere.
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerResponse } from 'node:http';
import { pino } from 'pino';
import { StaticCredentials } from '../../src/registry/credentials.js';
import { parseReference } from '../../src/image/reference.js';
import { MediaType } from '../../src/image/manifest.js';
import { sha256 } from '../../src/image/digest.js';
import { json, startServer, trustedLoopbackCert, type Seen, type TestServer } from './test-server.js';
import { MANIFEST, MANIFEST_DIGEST, testClient } from './fixtures.js';

const BASIC = `Basic ${Buffer.from('u:p').toString('base64')}`;

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function server(handler: (req: Seen, res: ServerResponse) => void, tls = false) {
  const s = await startServer(handler, tls ? await trustedLoopbackCert() : undefined);
  servers.push(s);
  return s;
}
function serveManifest(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': MediaType.ociManifest, 'docker-content-digest': MANIFEST_DIGEST });
  res.end(MANIFEST);
}
function redirect(res: ServerResponse, location: string): void {
  res.writeHead(307, { location });
  res.end();
}

describe('https is never downgraded', () => {
  it('follows an https mirror redirecting to https, refuses one redirecting to plain http', async () => {
    const plain = await server((_req, res) => serveManifest(res));
    const secure = await server((req, res) => {
      if (req.path.startsWith('/v2/')) return redirect(res, `/storage${req.path}`);
      serveManifest(res);
    }, true);
    const origin = await server((_req, res) => json(res, 404, {}));
    const ref = parseReference(`${origin.host}/a/b:t`);

    // Control: the https mirror is trusted and its https redirect followed (so the refusal below is not TLS).
    const good = testClient({ mirrors: { [origin.host]: [secure.origin] } });
    expect((await good.fetchManifest(ref)).digest).toBe(MANIFEST_DIGEST);
    expect(secure.seen.map((s) => s.path)).toEqual(['/v2/a/b/manifests/t', '/storage/v2/a/b/manifests/t']);
    await good.close();

    const downgrading = await server((req, res) => redirect(res, `${plain.origin}${req.url}`), true);
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
    const client = testClient({ log, mirrors: { [origin.host]: [downgrading.origin] } });
    // The mirror's answer is refused, so the origin (which has nothing) answers.
    await expect(client.fetchManifest(ref)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(downgrading.seen).toHaveLength(1);
    expect(plain.seen).toHaveLength(0);
    expect(lines.join('\n')).toMatch(/from https to plain http .*refused/);
    await client.close();
  });

  it('refuses a blob redirect from an https mirror to plain http storage', async () => {
    const blob = Buffer.from('blob bytes');
    const storage = await server((_req, res) => void res.end(blob));
    const mirror = await server((_req, res) => redirect(res, `${storage.origin}/bucket/x`), true);
    const origin = await server((_req, res) => json(res, 404, {}));
    const client = testClient({ mirrors: { [origin.host]: [mirror.origin] } });
    const reader = client.blobReader(parseReference(`${origin.host}/a/b:t`), sha256(blob), blob.length);
    await expect(reader.readRange(0, 4)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(mirror.seen).toHaveLength(1);
    expect(storage.seen).toHaveLength(0);
    await client.close();
  });
});

describe('push Authorization stays with the registry', () => {
  /** A registry wanting Basic auth that starts uploads at `location(req)`, and accepts PUTs on itself. */
  async function registry(location: (host: string) => string) {
    const s = await server((req, res) => {
      if (req.headers.authorization !== BASIC)
        return json(res, 401, {}, { 'www-authenticate': 'Basic realm="r"' });
      if (req.method === 'HEAD') return json(res, 404, {});
      if (req.method === 'POST') {
        res.writeHead(202, { location: location(s.host), 'content-length': '0' });
        return void res.end();
      }
      res.writeHead(201, { 'docker-content-digest': req.query.get('digest') ?? '' });
      res.end();
    });
    return s;
  }
  const creds = (host: string) =>
    new StaticCredentials({ credentials: { [host]: { username: 'u', password: 'p' } } });

  it('PUTs to an upload Location on another origin without Authorization', async () => {
    const upload = await server((req, res) => {
      res.writeHead(201, { 'docker-content-digest': req.query.get('digest') ?? '' });
      res.end();
    });
    const reg = await registry(() => `${upload.origin}/upload/1?state=x`);
    const client = testClient({ credentials: creds(reg.host) });
    const data = Buffer.from('layer bytes');
    const d = await client.pushBlob(parseReference(`${reg.host}/a/b:t`), data);
    expect(d.digest).toBe(sha256(data));
    expect(upload.seen).toHaveLength(1);
    expect(upload.seen[0]!.method).toBe('PUT');
    expect(upload.seen[0]!.headers.authorization).toBeUndefined();
    expect(upload.seen[0]!.body.equals(data)).toBe(true);
    await client.close();
  });

  it('keeps Authorization on an upload Location of the registry itself', async () => {
    const reg = await registry((host) => `http://${host}/v2/a/b/blobs/uploads/u1`);
    const client = testClient({ credentials: creds(reg.host) });
    await client.pushBlob(parseReference(`${reg.host}/a/b:t`), Buffer.from('x'));
    const put = reg.seen.find((s) => s.method === 'PUT');
    expect(put?.headers.authorization).toBe(BASIC);
    await client.close();
  });
});
