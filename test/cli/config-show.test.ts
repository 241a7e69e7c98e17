// `ferry config show` through the built binary: the effective config (defaults filled in around the file's
// values) as TOML or JSON, and no secret from the file anywhere in the output.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { redactConfig, REDACTED } from '../../src/config/redact.js';
import { FERRY_BIN, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';

const exec = promisify(execFile);

const password = `pw-${randomBytes(12).toString('hex')}`;
const identityToken = `tok-${randomBytes(12).toString('hex')}`;
const clusterSecret = randomBytes(33).toString('base64');
const mirrorPassword = `mp-${randomBytes(8).toString('hex')}`;

function writeConfig(): string {
  const { dir } = ferryEnv();
  const path = join(dir, 'secrets.toml');
  writeFileSync(
    path,
    `[cache]\nmaxBytes = 123456789\n\n` +
      `[registry]\nmirrors = { "docker.io" = ["https://puller:${mirrorPassword}@mirror.example:5000"] }\n` +
      `[[registry.credentials]]\nhost = "reg.example"\nusername = "alice"\npassword = "${password}"\n` +
      `[[registry.credentials]]\nhost = "other.example"\nidentityToken = "${identityToken}"\n\n` +
      `[p2p]\nsecret = "${clusterSecret}"\n\n[prefetch]\nhintTokenFile = "/etc/ferry/hint.token"\n`,
  );
  return path;
}

async function show(args: string[]): Promise<string> {
  requireBuild();
  return (await exec(process.execPath, [FERRY_BIN, 'config', 'show', ...args])).stdout;
}

describe('ferry config show', () => {
  const path = writeConfig();

  it('prints the effective config as TOML, secrets redacted', async () => {
    const out = await show(['--config', path]);
    for (const s of [password, identityToken, clusterSecret, mirrorPassword]) expect(out).not.toContain(s);
    const shown = parseToml(out) as ReturnType<typeof redactConfig>;
    const defaults = configSchema.parse({});
    expect(shown).toMatchObject({
      // From the file…
      cache: { maxBytes: 123456789 },
      registry: {
        mirrors: { 'docker.io': [`https://puller:${REDACTED}@mirror.example:5000`] },
        credentials: [
          { host: 'reg.example', username: 'alice', password: REDACTED },
          { host: 'other.example', identityToken: REDACTED },
        ],
      },
      p2p: { secret: REDACTED },
      // …a path to a secret is no secret…
      prefetch: { hintTokenFile: '/etc/ferry/hint.token' },
      // …and the defaults around them.
      daemon: { stateDir: defaults.daemon.stateDir },
      index: { chunkSizeBytes: defaults.index.chunkSizeBytes },
    });
  });

  it('prints the same as JSON with --json', async () => {
    const out = await show(['--json', '-c', path]);
    for (const s of [password, identityToken, clusterSecret, mirrorPassword]) expect(out).not.toContain(s);
    expect(JSON.parse(out)).toEqual(parseToml(await show(['--config', path])));
  });
});

describe('redactConfig', () => {
  it('redacts values under secret-like keys at any depth, in lists too, and leaves the rest', () => {
    expect(
      redactConfig({
        a: { apiToken: 'x', tokens: ['y', 'z'], tokenFile: '/p', nested: { privateKey: 'k', port: 1 } },
        url: 'http://u:p@h/x',
        plain: 'http://h/u:p@x',
      }),
    ).toEqual({
      a: {
        apiToken: REDACTED,
        tokens: [REDACTED, REDACTED],
        tokenFile: '/p',
        nested: { privateKey: REDACTED, port: 1 },
      },
      url: `http://u:${REDACTED}@h/x`,
      plain: 'http://h/u:p@x',
    });
  });
});
