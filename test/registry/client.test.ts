// RegistryClient behaviour over real servers: mirrors with ns=, digest checks, HTML and mismatch refusals;
// endpoint scheme rules.
import { afterEach, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/image/reference.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/manifest.js';
import { endpointUrl, endpointsFor, isLoopbackHost, schemeFor } from '../../src/registry/endpoints.js';
import { json, startServer, type TestServer } from './test-server.js';
import { MANIFEST, MANIFEST_DIGEST, testClient } from './fixtures.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
async function server(handler: Parameters<typeof startServer>[0]) {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}
const ok = (
  res: import('node:http').ServerResponse,
  body = MANIFEST,
  type: string = MediaType.ociManifest,
  extra: Record<string, string> = {},
) => {
  res.writeHead(200, { 'content-type': type, ...extra });
  res.end(body);
};

describe('endpoints', () => {
  it('uses http only for loopback and insecure hosts', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).toBe(true);
    expect(isLoopbackHost('127.1.2.3')).toBe(true);
    expect(isLoopbackHost('localhost:5000')).toBe(true);
    expect(isLoopbackHost('[::1]:5000')).toBe(true);
    expect(isLoopbackHost('10.0.0.1:5000')).toBe(false);
    expect(isLoopbackHost('127.evil.com')).toBe(false);
    expect(schemeFor('ghcr.io')).toBe('https');
    expect(schemeFor('10.0.0.1:5000', ['10.0.0.1:5000'])).toBe('http');
    expect(schemeFor('reg.lan:5000', ['reg.lan'])).toBe('http');
    expect(endpointsFor('docker.io', {}, true).map((e) => e.base.href)).toEqual([
      'https://registry-1.docker.io/',
    ]);
  });

  it('puts mirrors first with ns=, origin last, and not for push', () => {
    const opts = {
      mirrors: { 'docker.io': ['mirror.lan:5000', 'https://cache.example.com/prefix/'] },
      insecureHosts: ['mirror.lan:5000'],
    };
    const eps = endpointsFor('docker.io', opts, true);
    expect(eps.map((e) => endpointUrl(e, 'library/x', 'manifests/t').href)).toEqual([
      'http://mirror.lan:5000/v2/library/x/manifests/t?ns=docker.io',
      'https://cache.example.com/prefix/v2/library/x/manifests/t?ns=docker.io',
      'https://registry-1.docker.io/v2/library/x/manifests/t',
    ]);
    expect(endpointsFor('docker.io', opts, false)).toHaveLength(1);
  });
});

describe('mirrors', () => {
  it('skips a mirror that lacks the manifest and uses the origin', async () => {
    const mirror = await server((_req, res) => json(res, 404, {}));
    const origin = await server((_req, res) => ok(res));
    const client = testClient({ mirrors: { [origin.host]: [mirror.host] } });
    expect((await client.fetchManifest(parseReference(`${origin.host}/a/b:t`))).digest).toBe(MANIFEST_DIGEST);
    expect(mirror.seen[0]?.query.get('ns')).toBe(origin.host);
    expect(origin.seen[0]?.query.get('ns')).toBeNull();
    await client.close();
  });

  it('serves from the mirror when it has the content', async () => {
    const mirror = await server((_req, res) => ok(res));
    const origin = await server((_req, res) => json(res, 500, {}));
    const client = testClient({ mirrors: { [origin.host]: [`http://${mirror.host}`] } });
    await client.fetchManifest(parseReference(`${origin.host}/a/b:t`));
    expect(origin.seen).toHaveLength(0);
    await client.close();
  });
});

describe('manifest checks', () => {
  it('verifies a manifest fetched by digest', async () => {
    const s = await server((_req, res) => ok(res));
    const client = testClient();
    const good = await client.fetchManifest(parseReference(`${s.host}/a/b@${MANIFEST_DIGEST}`));
    expect(good.digest).toBe(MANIFEST_DIGEST);
    expect(s.seen[0]?.path).toBe(`/v2/a/b/manifests/${MANIFEST_DIGEST}`);
    expect(s.seen[0]?.headers.accept).toContain(MediaType.ociIndex);
    await expect(
      client.fetchManifest(parseReference(`${s.host}/a/b@${sha256('other')}`)),
    ).rejects.toMatchObject({ code: 'INTEGRITY' });
    await client.close();
  });

  it('cross-checks Docker-Content-Digest', async () => {
    const s = await server((_req, res) =>
      ok(res, MANIFEST, MediaType.ociManifest, { 'docker-content-digest': sha256('lies') }),
    );
    const client = testClient();
    await expect(client.fetchManifest(parseReference(`${s.host}/a/b:t`))).rejects.toMatchObject({
      code: 'INTEGRITY',
    });
    await client.close();
  });

  it('refuses an HTML page with a FORMAT error naming the reference', async () => {
    const s = await server((_req, res) =>
      ok(res, Buffer.from('<!doctype html><title>Sign in</title>'), 'text/html'),
    );
    const client = testClient();
    await expect(client.resolve(parseReference(`${s.host}/a/b:t`))).rejects.toMatchObject({
      code: 'FORMAT',
      message: new RegExp(`${s.host}/a/b:t`),
    });
    await client.close();
  });

  it('refuses a manifest larger than 4 MiB', async () => {
    const s = await server((_req, res) => ok(res, Buffer.alloc(4 * 1024 * 1024 + 10, 32)));
    const client = testClient();
    await expect(client.fetchManifest(parseReference(`${s.host}/a/b:t`))).rejects.toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
    });
    await client.close();
  });

  it('refuses an index entry whose size disagrees with the manifest', async () => {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociIndex,
        manifests: [
          {
            mediaType: MediaType.ociManifest,
            digest: MANIFEST_DIGEST,
            size: MANIFEST.length + 1,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      }),
    );
    const s = await server((req, res) =>
      req.path.endsWith('/t') ? ok(res, index, MediaType.ociIndex) : ok(res),
    );
    const client = testClient();
    await expect(client.resolve(parseReference(`${s.host}/a/b:t`))).rejects.toMatchObject({
      code: 'INTEGRITY',
    });
    await client.close();
  });
});
