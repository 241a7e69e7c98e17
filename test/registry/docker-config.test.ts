// Docker config credentials: auths decoding and lookup rules, Docker Hub's key, and real helper programs on PATH.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log.js';
import { DockerConfigCredentials } from '../../src/registry/docker-config.js';
import {
  ChainCredentials,
  StaticCredentials,
  staticCredentialsFromConfig,
} from '../../src/registry/credentials.js';

let dir: string;
let bin: string;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

function source(name: string, config: unknown): DockerConfigCredentials {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return new DockerConfigCredentials({ log: silentLogger(), configDir: d, path: `${bin}:/usr/bin:/bin` });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-docker-config-'));
  bin = join(dir, 'bin');
  mkdirSync(bin);
  // A credential helper speaking the docker-credential protocol: server URL on stdin, JSON on stdout.
  writeFileSync(
    join(bin, 'docker-credential-fake'),
    `#!/bin/sh
[ "$1" = get ] || exit 2
read server
echo "$server" >> "${join(dir, 'helper-calls')}"
case "$server" in
  helped.io|https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$server" ;;
  tokened.io) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-xyz"}' "$server" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
  );
  chmodSync(join(bin, 'docker-credential-fake'), 0o755);
  writeFileSync(join(bin, 'docker-credential-broken'), '#!/bin/sh\necho boom >&2\nexit 3\n');
  chmodSync(join(bin, 'docker-credential-broken'), 0o755);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('DockerConfigCredentials', () => {
  it('decodes auth, trimming trailing NULs and splitting at the first colon', async () => {
    const s = source('auths', {
      auths: {
        'reg.example.com': { auth: b64('alice:pa:ss\0\0') },
        'https://other.example.com/v2/': { username: 'bob', password: 'pw' },
        'tok.example.com': { identitytoken: 'id-token-1' },
        'https://index.docker.io/v1/': { auth: b64('hubuser:hubpw') },
      },
    });
    expect(await s.get('reg.example.com')).toEqual({ username: 'alice', password: 'pa:ss' });
    expect(await s.get('other.example.com')).toEqual({ username: 'bob', password: 'pw' });
    expect(await s.get('tok.example.com')).toEqual({ identityToken: 'id-token-1' });
    expect(await s.get('registry-1.docker.io')).toEqual({ username: 'hubuser', password: 'hubpw' });
    expect(await s.get('docker.io')).toEqual({ username: 'hubuser', password: 'hubpw' });
    expect(await s.get('nowhere.io')).toBeUndefined();
  });

  it('is a miss when there is no config file, and a FORMAT error when it is garbage', async () => {
    const missing = new DockerConfigCredentials({
      log: silentLogger(),
      configDir: join(dir, 'does-not-exist'),
    });
    expect(await missing.get('a.io')).toBeUndefined();
    await expect(source('garbage', '{oops').get('a.io')).rejects.toMatchObject({ code: 'FORMAT' });
  });

  it('honours $DOCKER_CONFIG', async () => {
    const d = join(dir, 'env');
    mkdirSync(d);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ auths: { 'env.io': { auth: b64('e:v') } } }));
    const before = process.env['DOCKER_CONFIG'];
    process.env['DOCKER_CONFIG'] = d;
    try {
      expect(await new DockerConfigCredentials({ log: silentLogger() }).get('env.io')).toEqual({
        username: 'e',
        password: 'v',
      });
    } finally {
      if (before === undefined) delete process.env['DOCKER_CONFIG'];
      else process.env['DOCKER_CONFIG'] = before;
    }
  });

  it('asks credHelpers and credsStore programs', async () => {
    const s = source('helpers', {
      auths: { 'plain.io': { auth: b64('p:q') } },
      credHelpers: { 'helped.io': 'fake', 'tokened.io': 'fake', 'broken.io': 'broken' },
      credsStore: 'fake',
    });
    expect(await s.get('helped.io')).toEqual({ username: 'helper-user', password: 'helper-secret' });
    expect(await s.get('tokened.io')).toEqual({ identityToken: 'refresh-xyz' });
    expect(await s.get('plain.io')).toEqual({ username: 'p', password: 'q' });
    // credsStore for Docker Hub is asked with the index.docker.io key.
    expect(await s.get('registry-1.docker.io')).toEqual({
      username: 'helper-user',
      password: 'helper-secret',
    });
    expect(await s.get('unknown.io')).toBeUndefined();
    await expect(s.get('broken.io')).rejects.toMatchObject({
      code: 'FORMAT',
      message: /docker-credential-broken/,
    });
    const calls = readFileSync(join(dir, 'helper-calls'), 'utf8').trim().split('\n');
    expect(calls).toEqual(['helped.io', 'tokened.io', 'https://index.docker.io/v1/', 'unknown.io']);
  });
});

describe('ChainCredentials', () => {
  it('returns the first answer', async () => {
    const chain = new ChainCredentials({
      sources: [
        new StaticCredentials({ credentials: { 'a.io': { username: 'a', password: '1' } } }),
        new StaticCredentials({
          credentials: {
            'https://a.io': { username: 'x', password: 'x' },
            'B.io:5000': { username: 'b', password: '2' },
          },
        }),
      ],
    });
    expect(await chain.get('a.io')).toEqual({ username: 'a', password: '1' });
    expect(await chain.get('b.io:5000')).toEqual({ username: 'b', password: '2' });
    expect(await chain.get('c.io')).toBeUndefined();
  });
});

describe('staticCredentialsFromConfig', () => {
  it('maps config entries and rejects incomplete ones', async () => {
    const s = staticCredentialsFromConfig([
      { host: 'a.io', username: 'u', password: 'p' },
      { host: 'https://b.io/', identityToken: 't' },
    ]);
    expect(await s.get('a.io')).toEqual({ username: 'u', password: 'p' });
    expect(await s.get('b.io')).toEqual({ identityToken: 't' });
    expect(() => staticCredentialsFromConfig([{ host: 'c.io', username: 'u' }])).toThrow(/c\.io/);
  });
});
