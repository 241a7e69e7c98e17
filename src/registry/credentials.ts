// Where registry credentials come from: the CredentialSource interface, a static source (Ferry config) and a chain.
import { InvalidArgumentError } from '../errors.js';

export type Credential =
  { readonly username: string; readonly password: string } | { readonly identityToken: string };

export interface CredentialSource {
  /** Credentials for a registry host (`host[:port]`, as contacted); undefined when there are none. */
  get(host: string, signal?: AbortSignal): Promise<Credential | undefined>;
}

/** Credentials given in Ferry's own config, keyed by host. */
export class StaticCredentials implements CredentialSource {
  private readonly byHost: ReadonlyMap<string, Credential>;

  constructor(options: { credentials: Readonly<Record<string, Credential>> }) {
    this.byHost = new Map(Object.entries(options.credentials).map(([h, c]) => [normalizeHost(h), c]));
  }

  get(host: string): Promise<Credential | undefined> {
    return Promise.resolve(this.byHost.get(normalizeHost(host)));
  }
}

/** Builds a StaticCredentials from Ferry's config list (`[{ host, username, password } | { host, identityToken }]`). */
export function staticCredentialsFromConfig(
  entries: ReadonlyArray<{
    host: string;
    username?: string | undefined;
    password?: string | undefined;
    identityToken?: string | undefined;
  }>,
): StaticCredentials {
  const credentials: Record<string, Credential> = {};
  for (const e of entries) {
    if (e.identityToken !== undefined) credentials[e.host] = { identityToken: e.identityToken };
    else if (e.username !== undefined && e.password !== undefined) {
      credentials[e.host] = { username: e.username, password: e.password };
    } else {
      throw new InvalidArgumentError(
        `registry credentials for ${e.host} need username and password, or identityToken`,
      );
    }
  }
  return new StaticCredentials({ credentials });
}

/** Asks each source in order; the first answer wins. */
export class ChainCredentials implements CredentialSource {
  constructor(private readonly options: { sources: readonly CredentialSource[] }) {}

  async get(host: string, signal?: AbortSignal): Promise<Credential | undefined> {
    for (const source of this.options.sources) {
      const found = await source.get(host, signal);
      if (found !== undefined) return found;
    }
    return undefined;
  }
}

/** `https://host:port/v1/` → `host:port`; lower-cased. */
export function normalizeHost(server: string): string {
  let s = server.trim().toLowerCase();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  const slash = s.indexOf('/');
  return slash >= 0 ? s.slice(0, slash) : s;
}

const DOCKER_HUB_HOSTS = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

export function isDockerHubHost(host: string): boolean {
  return DOCKER_HUB_HOSTS.has(normalizeHost(host));
}
