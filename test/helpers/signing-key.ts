// Key pairs for signed index artifacts in tests: PEM files in one temp dir per test process, removed at exit.
// The default pair is what `ferry(['index', …, '--push'])` signs with and what every ferryEnv() node trusts.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyFiles {
  privatePath: string;
  publicPath: string;
}

let dir: string | undefined;
const made = new Map<string, KeyFiles>();

/** A P-256 key pair (cosign's default) named `name`, generated once per process. */
export function keyPair(name = 'default'): KeyFiles {
  const known = made.get(name);
  if (known !== undefined) return known;
  if (dir === undefined) {
    const d = mkdtempSync(join(tmpdir(), 'ferry-keys-'));
    dir = d;
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const files = { privatePath: join(dir, `${name}.key`), publicPath: join(dir, `${name}.pub`) };
  writeFileSync(files.privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(files.publicPath, publicKey.export({ type: 'spki', format: 'pem' }));
  made.set(name, files);
  return files;
}
