// Shared secrets (cluster secret, hint token): random ones pass, placeholders, short and patterned ones are
// refused wherever a secret enters (inline config, secret files, the shipped deploy files), never echoing them.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readTokenFile } from '../../src/api/prefetch-server.js';
import { createContext } from '../../src/node/context.js';
import { validateConfig } from '../../src/config/load.js';
import { readSecretFile, secretProblem } from '../../src/config/secret.js';

const WEAK = [
  'replace-me-with-32-random-bytes-base64', // what deploy/daemonset.yaml used to ship
  'changeme',
  'changeme-changeme-changeme-changeme',
  'CHANGE_ME_PLEASE_0d9f8a7s6d5f4g3h2j1k',
  'placeholder-value-for-the-cluster-01',
  'my-super-long-cluster-secret-value-here',
  'p2p-integration-cluster-secret',
  'a-long-enough-bearer-token-0123456789',
  'a'.repeat(64),
  'ab12'.repeat(10),
  'Zq8#kL2m'.repeat(5),
  '0123456789abcdefghijklmnopqrstuvwxyz',
  'zyxwvutsrqponmlkjihgfedcba9876543210',
  '   short-but-padded-with-spaces        ',
  'x1y2'.repeat(4) + 'abcdefghijklmnopqrst',
];

async function tempFile(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-secret-'));
  const path = join(dir, 'secret');
  await writeFile(path, content);
  return path;
}

describe('secret strength', () => {
  it('refuses placeholders, short, repeated and sequential values', () => {
    for (const w of WEAK) expect(secretProblem(w.trim()), w).toBeDefined();
  });

  it('accepts 32 random bytes as base64, base64url or hex, and longer', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 32, max: 96 }),
        fc.constantFrom('base64', 'base64url', 'hex'),
        (n, enc) => {
          const v = randomBytes(n).toString(enc);
          return secretProblem(v) === undefined;
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses a weak inline p2p.secret in the config, naming the rule and not the value', () => {
    for (const w of WEAK) {
      let message = '';
      try {
        validateConfig({ p2p: { secret: w } });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, w).toMatch(/p2p\.secret: refused \(.+\); use at least 32 bytes of random data/);
      expect(message).not.toContain(w.trim());
    }
    const good = randomBytes(32).toString('base64');
    expect(validateConfig({ p2p: { secret: good } }).p2p.secret).toBe(good);
  });

  it('refuses a weak secret file and hint token file without printing it', async () => {
    const path = await tempFile('replace-me-with-32-random-bytes-base64\n');
    await expect(readSecretFile(path, 'p2p.clusterSecretFile')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(readSecretFile(path, 'p2p.clusterSecretFile')).rejects.toThrow(
      /^p2p\.clusterSecretFile \(.*\): the secret is refused \(it looks like a placeholder\)/,
    );
    await expect(readTokenFile(path)).rejects.toThrow(/prefetch\.hintTokenFile .*refused/);
    await expect(readTokenFile(path)).rejects.not.toThrow(/replace-me/);
    const good = randomBytes(32).toString('hex');
    expect(await readTokenFile(await tempFile(`  ${good}\n`))).toBe(good);
  });

  it('keeps the P2P node from starting with a placeholder clusterSecretFile', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-secret-ctx-'));
    const secretFile = await tempFile('changeme-changeme-changeme-changeme');
    const configPath = join(dir, 'config.toml');
    await writeFile(
      configPath,
      `[daemon]\nstateDir = "${dir}/state"\nlogLevel = "silent"\n[registry]\ndockerConfig = false\n` +
        `[p2p]\nenabled = true\nlisten = "127.0.0.1:0"\npeers = []\nclusterSecretFile = "${secretFile}"\n`,
    );
    const ctx = await createContext({ configPath, logLevel: 'silent' });
    try {
      const p2p = ctx.p2p();
      await expect(p2p).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(p2p).rejects.toThrow(/^p2p\.clusterSecretFile .*refused/);
    } finally {
      await ctx.close();
    }
  });

  it('the deploy files ship no secret value that would pass', async () => {
    const files = ['deploy/daemonset.yaml', 'deploy/README.md', 'README.md'];
    const shipped: string[] = [];
    for (const f of files) {
      const text = await readFile(f, 'utf8');
      // YAML `secret: '…'` / TOML `secret = "…"` / kubectl `--from-literal=secret=…` with a literal value.
      for (const m of text.matchAll(/\bsecret\s*[:=]\s*['"]([^'"$]+)['"]|from-literal=secret=([^"'$\s]+)/g))
        shipped.push((m[1] ?? m[2])!);
    }
    for (const s of shipped) expect(secretProblem(s.trim()), s).toBeDefined();
    expect(await readFile('deploy/daemonset.yaml', 'utf8')).not.toMatch(/^kind: Secret$/m);
  });
});
