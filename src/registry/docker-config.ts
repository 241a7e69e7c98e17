// Credentials from Docker's config.json ($DOCKER_CONFIG or ~/.docker): `auths` entries and credential helpers.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { FormatError } from '../errors.js';
import { isDockerHubHost, normalizeHost, type Credential, type CredentialSource } from './credentials.js';

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
const HELPER_TIMEOUT_MS = 10_000;

const AuthEntry = z.object({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
  registrytoken: z.string().optional(),
});
const ConfigFile = z.object({
  auths: z.record(z.string(), AuthEntry).optional(),
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
});
type ConfigFile = z.infer<typeof ConfigFile>;
const HelperReply = z.object({ ServerURL: z.string().optional(), Username: z.string(), Secret: z.string() });

export interface DockerConfigOptions {
  log: Logger;
  /** Directory holding config.json; default $DOCKER_CONFIG, else ~/.docker. */
  configDir?: string;
  /** PATH used to find docker-credential-* helpers; default the process's. */
  path?: string;
}

export class DockerConfigCredentials implements CredentialSource {
  private loaded: Promise<ConfigFile | undefined> | undefined;
  private readonly file: string;

  constructor(private readonly options: DockerConfigOptions) {
    const dir = options.configDir ?? process.env['DOCKER_CONFIG'] ?? join(homedir(), '.docker');
    this.file = join(dir, 'config.json');
  }

  async get(host: string, signal?: AbortSignal): Promise<Credential | undefined> {
    this.loaded ??= this.load();
    const config = await this.loaded;
    if (config === undefined) return undefined;
    const wanted = normalizeHost(host);
    const key = isDockerHubHost(wanted) ? DOCKER_HUB_KEY : wanted;
    const helper =
      config.credHelpers?.[wanted] ??
      (isDockerHubHost(wanted) ? config.credHelpers?.['docker.io'] : undefined);
    if (helper !== undefined) return this.askHelper(helper, key, signal);
    const entry = findEntry(config.auths ?? {}, key, wanted);
    if (entry !== undefined) {
      const cred = entryCredential(entry, this.file);
      if (cred !== undefined) return cred;
    }
    if (config.credsStore !== undefined) return this.askHelper(config.credsStore, key, signal);
    return undefined;
  }

  private async load(): Promise<ConfigFile | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FormatError(`docker config ${this.file} is not JSON`, { cause: e });
    }
    const r = ConfigFile.safeParse(json);
    if (!r.success)
      throw new FormatError(`docker config ${this.file} has an unexpected shape`, { cause: r.error });
    return r.data;
  }

  /** Runs `docker-credential-<helper> get` with the server URL on stdin. "Not found" is a miss. */
  private askHelper(helper: string, server: string, signal?: AbortSignal): Promise<Credential | undefined> {
    const program = `docker-credential-${helper}`;
    const env = this.options.path !== undefined ? { ...process.env, PATH: this.options.path } : process.env;
    return new Promise((resolve, reject) => {
      const child = execFile(
        program,
        ['get'],
        { env, timeout: HELPER_TIMEOUT_MS, maxBuffer: 1024 * 1024, ...(signal ? { signal } : {}) },
        (error, stdout, stderr) => {
          const out = stdout;
          if (error !== null) {
            // Helpers print "credentials not found" (exit 1) for unknown servers.
            if (/not found/i.test(out) || /not found/i.test(stderr)) return resolve(undefined);
            this.options.log.warn({ helper: program, server }, 'docker credential helper failed');
            return reject(
              new FormatError(`credential helper ${program} failed for ${server}: ${error.message}`),
            );
          }
          let reply;
          try {
            reply = HelperReply.parse(JSON.parse(out));
          } catch (e) {
            return reject(
              new FormatError(`credential helper ${program} returned unreadable output for ${server}`, {
                cause: e,
              }),
            );
          }
          if (reply.Username === '<token>') return resolve({ identityToken: reply.Secret });
          if (reply.Username === '' && reply.Secret === '') return resolve(undefined);
          resolve({ username: reply.Username, password: reply.Secret });
        },
      );
      // A helper that exits without reading stdin must not crash us with EPIPE.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(server);
    });
  }
}

function findEntry(
  auths: Record<string, z.infer<typeof AuthEntry>>,
  key: string,
  host: string,
): z.infer<typeof AuthEntry> | undefined {
  const exact = auths[key] ?? auths[host];
  if (exact !== undefined) return exact;
  for (const [server, entry] of Object.entries(auths)) {
    const h = normalizeHost(server);
    if (h === host || (isDockerHubHost(h) && isDockerHubHost(host))) return entry;
  }
  return undefined;
}

function entryCredential(entry: z.infer<typeof AuthEntry>, file: string): Credential | undefined {
  if (entry.identitytoken !== undefined && entry.identitytoken !== '')
    return { identityToken: entry.identitytoken };
  if (entry.auth !== undefined && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0)
      throw new FormatError(`docker config ${file}: an "auth" entry does not decode to user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/\0+$/, '') };
  }
  if (entry.username !== undefined && entry.password !== undefined) {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}
