// Auth flows against real HTTP servers: anonymous tokens, password POST, GET+Basic fallback, refresh, Basic.
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerResponse } from 'node:http';
import { pino } from 'pino';
import { parseWwwAuthenticate } from '../../src/registry/auth.js';
import { StaticCredentials } from '../../src/registry/credentials.js';
import { parseReference } from '../../src/image/reference.js';
import { MediaType } from '../../src/image/manifest.js';
import { json, startServer, type Seen, type TestServer } from './test-server.js';
import { MANIFEST, MANIFEST_DIGEST, testClient } from './fixtures.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function serveManifest(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': MediaType.ociManifest, 'docker-content-digest': MANIFEST_DIGEST });
  res.end(MANIFEST);
}

/** A registry that wants `Bearer <valid()>` and a token server whose behaviour the test sets. */
async function bearerSetup(tokenHandler: (req: Seen, res: ServerResponse) => void, valid: () => string) {
  const tokens = await startServer(tokenHandler);
  const registry = await startServer((req, res) => {
    if (req.headers.authorization === `Bearer ${valid()}`) return serveManifest(res);
    json(
      res,
      401,
      { errors: [{ code: 'UNAUTHORIZED' }] },
      {
        'www-authenticate': `Bearer realm="${tokens.origin}/token",service="test-svc",scope="repository:a/b:pull"`,
      },
    );
  });
  servers.push(tokens, registry);
  return { tokens, registry, ref: parseReference(`${registry.host}/a/b:t`) };
}

describe('parseWwwAuthenticate', () => {
  it('parses bearer and basic challenges with quoted commas and spaces', () => {
    const got = parseWwwAuthenticate(
      'Bearer realm="https://auth.io/token",service="reg.io",scope="repository:a/b:pull,push repository:c:pull", Basic realm="x\\"y"',
    );
    expect(got).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.io/token',
          service: 'reg.io',
          scope: 'repository:a/b:pull,push repository:c:pull',
        },
      },
      { scheme: 'basic', params: { realm: 'x"y' } },
    ]);
    expect(parseWwwAuthenticate('Basic')).toEqual([{ scheme: 'basic', params: {} }]);
  });
});

describe('token auth', () => {
  it('gets an anonymous token with GET realm?service&scope and caches it', async () => {
    const { tokens, registry, ref } = await bearerSetup(
      (_req, res) => json(res, 200, { token: 'anon-1' }),
      () => 'anon-1',
    );
    const client = testClient();
    const m = await client.fetchManifest(ref);
    expect(m.digest).toBe(MANIFEST_DIGEST);
    await client.fetchManifest(ref);
    expect(tokens.seen).toHaveLength(1);
    const t = tokens.seen[0]!;
    expect(t.method).toBe('GET');
    expect(t.query.get('service')).toBe('test-svc');
    expect(t.query.getAll('scope')).toEqual(['repository:a/b:pull']);
    expect(t.headers.authorization).toBeUndefined();
    expect(registry.seen.map((s) => s.headers.authorization)).toEqual([
      undefined,
      'Bearer anon-1',
      'Bearer anon-1',
    ]);
    await client.close();
  });

  it('POSTs grant_type=password with credentials and uses access_token', async () => {
    const { tokens, ref } = await bearerSetup(
      (_req, res) => json(res, 200, { access_token: 'pw-tok', token: 'other', expires_in: 300 }),
      () => 'pw-tok',
    );
    const client = testClient({
      credentials: new StaticCredentials({
        credentials: { [ref.registry]: { username: 'u', password: 'p@ss w' } },
      }),
    });
    await client.fetchManifest(ref);
    expect(tokens.seen).toHaveLength(1);
    const form = new URLSearchParams(tokens.seen[0]!.body.toString());
    expect(tokens.seen[0]!.method).toBe('POST');
    expect(Object.fromEntries(form)).toMatchObject({
      grant_type: 'password',
      username: 'u',
      password: 'p@ss w',
      service: 'test-svc',
      scope: 'repository:a/b:pull',
    });
    await client.close();
  });

  it('POSTs grant_type=refresh_token for an identity token', async () => {
    const { tokens, ref } = await bearerSetup(
      (_req, res) => json(res, 200, { token: 'id-tok' }),
      () => 'id-tok',
    );
    const client = testClient({
      credentials: new StaticCredentials({
        credentials: { [ref.registry]: { identityToken: 'refresh-me' } },
      }),
    });
    await client.fetchManifest(ref);
    const form = new URLSearchParams(tokens.seen[0]!.body.toString());
    expect(form.get('grant_type')).toBe('refresh_token');
    expect(form.get('refresh_token')).toBe('refresh-me');
    await client.close();
  });

  it('falls back to GET with Basic when the POST is refused', async () => {
    const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;
    const { tokens, ref } = await bearerSetup(
      (req, res) => {
        if (req.method === 'POST') return json(res, 404, {});
        if (req.headers.authorization === basic) return json(res, 200, { token: 'basic-tok' });
        json(res, 401, {});
      },
      () => 'basic-tok',
    );
    const client = testClient({
      credentials: new StaticCredentials({
        credentials: { [ref.registry]: { username: 'u', password: 'p' } },
      }),
    });
    await client.fetchManifest(ref);
    expect(tokens.seen.map((s) => s.method)).toEqual(['POST', 'GET']);
    expect(tokens.seen[1]!.headers.authorization).toBe(basic);
    await client.close();
  });

  it('refreshes the token when the registry answers 401 to a cached one', async () => {
    let generation = 1;
    const { tokens, ref } = await bearerSetup(
      (_req, res) => json(res, 200, { token: `gen-${generation}`, expires_in: 3600 }),
      () => `gen-${generation}`,
    );
    const client = testClient();
    await client.fetchManifest(ref);
    generation = 2; // the registry now only accepts a new token
    await client.fetchManifest(ref);
    expect(tokens.seen).toHaveLength(2);
    await client.close();
  });

  it('reports UNAUTHENTICATED when the token server refuses the credentials', async () => {
    const { ref } = await bearerSetup(
      (_req, res) => json(res, 401, {}),
      () => 'never',
    );
    const client = testClient({
      credentials: new StaticCredentials({
        credentials: { [ref.registry]: { username: 'u', password: 'secret-pw' } },
      }),
    });
    const err = await client.fetchManifest(ref).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((err as Error).message).not.toContain('secret-pw');
    await client.close();
  });
});

describe('basic auth', () => {
  async function basicRegistry() {
    const registry = await startServer((req, res) => {
      if (req.headers.authorization === `Basic ${Buffer.from('alice:pw').toString('base64')}`)
        return serveManifest(res);
      json(res, 401, {}, { 'www-authenticate': 'Basic realm="registry"' });
    });
    servers.push(registry);
    return { registry, ref: parseReference(`${registry.host}/a/b:t`) };
  }

  it('answers a Basic challenge with the configured credentials, then sends them up front', async () => {
    const { registry, ref } = await basicRegistry();
    const client = testClient({
      credentials: new StaticCredentials({
        credentials: { [registry.host]: { username: 'alice', password: 'pw' } },
      }),
    });
    await client.fetchManifest(ref);
    await client.fetchManifest(ref);
    expect(registry.seen.map((s) => s.headers.authorization !== undefined)).toEqual([false, true, true]);
    await client.close();
  });

  it('fails UNAUTHENTICATED without credentials or with wrong ones', async () => {
    const { registry, ref } = await basicRegistry();
    const none = testClient();
    await expect(none.fetchManifest(ref)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: /requires credentials/,
    });
    const wrong = testClient({
      credentials: new StaticCredentials({
        credentials: { [registry.host]: { username: 'alice', password: 'nope' } },
      }),
    });
    await expect(wrong.fetchManifest(ref)).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: /refused/,
    });
    await Promise.all([none.close(), wrong.close()]);
  });
});

describe('token realm safety', () => {
  it('refuses a plain-http realm on a host that is neither loopback nor insecure', async () => {
    const registry = await startServer((_req, res) =>
      json(res, 401, {}, { 'www-authenticate': 'Bearer realm="http://auth.example.com/token",service="s"' }),
    );
    servers.push(registry);
    const client = testClient();
    await expect(client.fetchManifest(parseReference(`${registry.host}/a/b:t`))).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      message: /not https/,
    });
    await client.close();
  });
});

describe('secrets stay out of logs', () => {
  it('logs nothing containing passwords or tokens at debug level', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) });
    const { ref } = await bearerSetup(
      (req, res) => (req.method === 'POST' ? json(res, 405, {}) : json(res, 200, { token: 'tok-SECRET-1' })),
      () => 'tok-SECRET-1',
    );
    const client = testClient({
      log,
      retries: 1,
      credentials: new StaticCredentials({
        credentials: { [ref.registry]: { username: 'u', password: 'pw-SECRET-2' } },
      }),
    });
    await client.fetchManifest(ref);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toMatch(/SECRET/);
    await client.close();
  });
});
