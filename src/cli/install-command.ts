// `ferry install [--prefix DIR]`: puts the systemd units (ferry.socket, ferry.service, ferry-fuse.service) and a
// default config in place (a config already there is kept) and prints the containerd config snippet and the next
// commands. Writes nothing outside <prefix>.
import { chmod, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { dirWithMode } from '../private-fs.js';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { containerdSnippet } from '../config/containerd-config.js';
import { defaultConfigToml, validateConfig } from '../config/load.js';

export interface InstallOptions {
  /** Root to install under (default `/`); e.g. a package build root or a test dir. */
  prefix?: string;
  /** The command systemd runs; default this node binary with this ferry's bin/ferry.js. */
  execStart?: string;
  /** The FUSE holder's command (ferry-fuse.service); default likewise. */
  holderExecStart?: string;
}

export const UNIT_DIR = 'etc/systemd/system';
export const CONFIG_PATH = '/etc/ferry/config.toml';
/** The default config's paths: what the shipped units and the containerd snippet name. */
const DEFAULT_PATHS = validateConfig({}).paths;
const SOCKET_PATH = DEFAULT_PATHS.snapshotterSocket;
const HOLDER_SOCKET_PATH = DEFAULT_PATHS.holderSocket;
const CACHE_DIR = '/var/cache/ferry/chunks'; // the unit's CacheDirectory=

/** The shipped units: <package>/systemd, two levels above this file in both src/ and dist/. */
export function unitSourceDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../systemd');
}

async function ferryCommand(): Promise<string> {
  const bin = await realpath(resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/ferry.js'));
  return `${process.execPath} ${bin}`;
}

/** The default config with the cache under the unit's CacheDirectory. */
export function installConfigToml(): string {
  return defaultConfigToml().replace(/^\[cache\]\n/m, `[cache]\ndir = "${CACHE_DIR}"\n`);
}

export interface InstallResult {
  unitPath: string;
  holderUnitPath: string;
  socketUnitPath: string;
  configPath: string;
  configWritten: boolean;
  snippet: string;
}

export async function install(o: InstallOptions = {}): Promise<InstallResult> {
  const prefix = resolve(o.prefix ?? '/');
  const ferry = await ferryCommand();
  const unitPath = await writeUnit(
    prefix,
    'ferry.service',
    o.execStart ?? `${ferry} daemon --config ${CONFIG_PATH} --no-spawn-holder`,
  );
  const holderUnitPath = await writeUnit(
    prefix,
    'ferry-fuse.service',
    o.holderExecStart ?? `${ferry} fuse-holder --socket ${HOLDER_SOCKET_PATH} --orphan-timeout-ms 0`,
  );
  // The socket unit has no ExecStart; its ListenStream is SOCKET_PATH, the snippet's address.
  const socketUnitPath = await writeUnit(prefix, 'ferry.socket');
  const configPath = join(prefix, CONFIG_PATH);
  const exists = await stat(configPath).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await dirWithMode(dirname(configPath), 0o755);
    // 0600: credentials may be added to it later.
    await writeFile(configPath, installConfigToml(), { mode: 0o600 });
  }
  return {
    unitPath,
    holderUnitPath,
    socketUnitPath,
    configPath,
    configWritten: !exists,
    snippet: containerdSnippet({ name: 'ferry', socketPath: SOCKET_PATH }),
  };
}

async function writeUnit(prefix: string, name: string, execStart?: string): Promise<string> {
  const shipped = await readFile(join(unitSourceDir(), name), 'utf8');
  const text =
    execStart === undefined ? shipped : shipped.replace(/^ExecStart=.*$/m, `ExecStart=${execStart}`);
  const path = join(prefix, UNIT_DIR, name);
  await dirWithMode(dirname(path), 0o755);
  await writeFile(path, text, { mode: 0o644 });
  await chmod(path, 0o644); // ferry runs under umask 077 (bin/ferry.js); units are world-readable as usual
  return path;
}

export async function runInstall(o: InstallOptions): Promise<void> {
  const r = await install(o);
  const out = process.stdout;
  out.write(`installed ${r.socketUnitPath}\ninstalled ${r.unitPath}\ninstalled ${r.holderUnitPath}\n`);
  out.write(r.configWritten ? `wrote ${r.configPath}\n` : `kept existing ${r.configPath}\n`);
  out.write('\nAdd to /etc/containerd/config.toml (containerd 1.6/1.7, version = 2):\n\n');
  out.write(r.snippet);
  out.write(
    '\nThen:\n  systemctl daemon-reload\n  systemctl enable --now ferry.socket ferry\n  systemctl restart containerd\n' +
      '  ferry doctor\n',
  );
}
