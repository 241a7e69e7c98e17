// `ferry install [--prefix DIR]`: puts the systemd unit and a default config in place (a config already there is
// kept) and prints the containerd config snippet and the next commands. Writes nothing outside <prefix>.
import { mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { containerdSnippet } from '../config/containerd-config.js';
import { defaultConfigToml } from '../config/load.js';

export interface InstallOptions {
  /** Root to install under (default `/`); e.g. a package build root or a test dir. */
  prefix?: string;
  /** The command systemd runs; default this node binary with this ferry's bin/ferry.js. */
  execStart?: string;
}

export const UNIT_DIR = 'etc/systemd/system';
export const CONFIG_PATH = '/etc/ferry/config.toml';
const SOCKET_PATH = '/run/ferry/snapshotter.sock';
const CACHE_DIR = '/var/cache/ferry/chunks'; // the unit's CacheDirectory=

/** The shipped units: <package>/systemd, two levels above this file in both src/ and dist/. */
export function unitSourceDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../systemd');
}

async function defaultExecStart(): Promise<string> {
  const bin = await realpath(resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/ferry.js'));
  return `${process.execPath} ${bin} daemon --config ${CONFIG_PATH}`;
}

/** The default config with the cache under the unit's CacheDirectory. */
export function installConfigToml(): string {
  return defaultConfigToml().replace(/^\[cache\]\n/m, `[cache]\ndir = "${CACHE_DIR}"\n`);
}

export interface InstallResult {
  unitPath: string;
  configPath: string;
  configWritten: boolean;
  snippet: string;
}

export async function install(o: InstallOptions = {}): Promise<InstallResult> {
  const prefix = resolve(o.prefix ?? '/');
  const unitText = (await readFile(join(unitSourceDir(), 'ferry.service'), 'utf8')).replace(
    /^ExecStart=.*$/m,
    `ExecStart=${o.execStart ?? (await defaultExecStart())}`,
  );
  const unitPath = join(prefix, UNIT_DIR, 'ferry.service');
  await mkdir(dirname(unitPath), { recursive: true });
  await writeFile(unitPath, unitText, { mode: 0o644 });
  const configPath = join(prefix, CONFIG_PATH);
  const exists = await stat(configPath).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await mkdir(dirname(configPath), { recursive: true, mode: 0o755 });
    // 0600: credentials may be added to it later.
    await writeFile(configPath, installConfigToml(), { mode: 0o600 });
  }
  return {
    unitPath,
    configPath,
    configWritten: !exists,
    snippet: containerdSnippet({ name: 'ferry', socketPath: SOCKET_PATH }),
  };
}

export async function runInstall(o: InstallOptions): Promise<void> {
  const r = await install(o);
  const out = process.stdout;
  out.write(`installed ${r.unitPath}\n`);
  out.write(r.configWritten ? `wrote ${r.configPath}\n` : `kept existing ${r.configPath}\n`);
  out.write('\nAdd to /etc/containerd/config.toml (containerd 1.6/1.7, version = 2):\n\n');
  out.write(r.snippet);
  out.write(
    '\nThen:\n  systemctl daemon-reload\n  systemctl enable --now ferry\n  systemctl restart containerd\n' +
      '  ferry doctor\n',
  );
}
