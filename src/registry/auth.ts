// Registry authentication: WWW-Authenticate parsing, Basic, and Docker token (Bearer) flows with a token cache
// per host+scope. Secrets only ever travel in headers and form bodies, never in log fields or messages.
import { z } from 'zod';
import type { Logger } from '../log.js';
import { FerryError, UnavailableError } from '../errors.js';
import type { Credential, CredentialSource } from './credentials.js';
import type { HttpTransport } from './http.js';

export interface Challenge {
  /** Lower-cased: `basic`, `bearer`, ... */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses `Bearer realm="https://a",service="b",scope="c d", Basic realm="x"` into challenges. */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const out: Array<{ scheme: string; params: Record<string, string> }> = [];
  const re = /\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*,?/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < header.length && (m = re.exec(header)) !== null) {
    const [, name = '', rawValue] = m;
    if (rawValue === undefined) {
      out.push({ scheme: name.toLowerCase(), params: {} });
      continue;
    }
    const value = rawValue.startsWith('"') ? rawValue.slice(1, -1).replace(/\\(.)/g, '$1') : rawValue;
    const current = out[out.length - 1];
    if (current !== undefined) current.params[name.toLowerCase()] = value;
    if (m[0] === '') break;
  }
  return out;
}

const TokenReply = z.object({
  token: z.string().optional(),
  access_token: z.string().optional(),
  expires_in: z.number().optional(),
  issued_at: z.string().optional(),
});

const DEFAULT_TOKEN_LIFETIME_S = 60;
const MAX_TOKEN_REPLY_BYTES = 1024 * 1024;

export class UnauthenticatedError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAUTHENTICATED', message, options);
  }
}

export interface AuthenticatorOptions {
  http: HttpTransport;
  log: Logger;
  credentials?: CredentialSource | undefined;
  /** Whether a token realm may be plain http (loopback and configured insecure hosts only). */
  allowHttp: (hostPort: string) => boolean;
  clientId?: string;
}

interface Cached {
  readonly header: string;
  readonly expiresAtMs: number;
}

export class Authenticator {
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly clientId: string;

  constructor(private readonly options: AuthenticatorOptions) {
    this.clientId = options.clientId ?? 'ferry';
  }

  /** The Authorization header to send to host for scope, if one is known and fresh. */
  cached(host: string, scope: string): string | undefined {
    const now = Date.now();
    for (const key of [`${host} *`, `${host} ${scope}`]) {
      const c = this.cache.get(key);
      if (c !== undefined && c.expiresAtMs > now) return c.header;
      if (c !== undefined) this.cache.delete(key);
    }
    return undefined;
  }

  /** Forgets what was sent after the registry answered 401 to it. */
  invalidate(host: string, scope: string): void {
    this.cache.delete(`${host} *`);
    this.cache.delete(`${host} ${scope}`);
  }

  /** Answers a 401 challenge: returns (and caches) the Authorization header to retry with. */
  async authorize(
    host: string,
    scope: string,
    wwwAuthenticate: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const challenges = parseWwwAuthenticate(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    const key = bearer !== undefined ? `${host} ${scope}` : `${host} *`;
    const running = this.inflight.get(key);
    if (running !== undefined) return running;
    const work = (async (): Promise<string> => {
      const credential = await this.options.credentials?.get(host, signal);
      if (bearer !== undefined) {
        const { token, lifetimeS } = await this.fetchToken(host, scope, bearer, credential, signal);
        const header = `Bearer ${token}`;
        // Renew a little early so a request does not leave with a token about to expire.
        this.cache.set(key, { header, expiresAtMs: Date.now() + lifetimeS * 900 });
        return header;
      }
      if (basic !== undefined) {
        const header = basicHeader(host, credential);
        this.cache.set(key, { header, expiresAtMs: Number.POSITIVE_INFINITY });
        return header;
      }
      throw new UnauthenticatedError(
        `registry ${host} asks for an unsupported auth scheme (${challenges.map((c) => c.scheme).join(', ') || 'none'})`,
      );
    })();
    this.inflight.set(key, work);
    try {
      return await work;
    } finally {
      this.inflight.delete(key);
    }
  }

  private async fetchToken(
    host: string,
    scope: string,
    challenge: Challenge,
    credential: Credential | undefined,
    signal?: AbortSignal,
  ): Promise<{ token: string; lifetimeS: number }> {
    const realmText = challenge.params['realm'];
    let realm: URL;
    try {
      realm = new URL(realmText ?? '');
    } catch (e) {
      throw new UnauthenticatedError(`registry ${host} sent a Bearer challenge without a usable realm`, {
        cause: e,
      });
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.options.allowHttp(realm.host))) {
      // Credentials must not cross the network in clear text to a realm nobody declared insecure.
      throw new UnauthenticatedError(`registry ${host}: token realm ${realm.host} is not https`);
    }
    const service = challenge.params['service'];
    const scopes = [
      ...new Set([...scope.split(' '), ...(challenge.params['scope']?.split(' ') ?? [])]),
    ].filter(Boolean);
    const what = `token for ${host} (${scopes.join(' ')})`;
    const { http } = this.options;

    if (credential !== undefined) {
      const form = new URLSearchParams();
      if ('identityToken' in credential) {
        form.set('grant_type', 'refresh_token');
        form.set('refresh_token', credential.identityToken);
      } else {
        form.set('grant_type', 'password');
        form.set('username', credential.username);
        form.set('password', credential.password);
      }
      if (service !== undefined) form.set('service', service);
      form.set('scope', scopes.join(' '));
      form.set('client_id', this.clientId);
      const res = await http.request(
        {
          method: 'POST',
          url: realm,
          headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
          body: form.toString(),
          what,
          signal,
        },
        MAX_TOKEN_REPLY_BYTES,
      );
      if (res.status === 200) return readToken(res.bytes, host);
      const username = 'username' in credential;
      const fallback = [400, 401, 404].includes(res.status) || (res.status === 405 && username);
      if (!fallback) throw tokenFailure(host, res.status);
      this.options.log.debug({ host, status: res.status }, 'token POST refused; trying GET with basic auth');
    }

    const url = new URL(realm);
    if (service !== undefined) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (credential !== undefined) headers['authorization'] = basicHeader(host, credential);
    const res = await http.request({ method: 'GET', url, headers, what, signal }, MAX_TOKEN_REPLY_BYTES);
    if (res.status !== 200) throw tokenFailure(host, res.status);
    return readToken(res.bytes, host);
  }
}

function basicHeader(host: string, credential: Credential | undefined): string {
  if (credential === undefined)
    throw new UnauthenticatedError(`registry ${host} requires credentials and none are configured`);
  if (!('username' in credential)) {
    throw new UnauthenticatedError(
      `registry ${host} asks for basic auth but only an identity token is configured`,
    );
  }
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

function readToken(bytes: Buffer, host: string): { token: string; lifetimeS: number } {
  let reply;
  try {
    reply = TokenReply.parse(JSON.parse(bytes.toString('utf8')));
  } catch (e) {
    throw new UnavailableError(`token server for ${host} returned an unreadable reply`, { cause: e });
  }
  const token = reply.access_token ?? reply.token;
  if (token === undefined || token === '')
    throw new UnavailableError(`token server for ${host} returned no token`);
  const lifetimeS =
    reply.expires_in !== undefined && reply.expires_in > 0 ? reply.expires_in : DEFAULT_TOKEN_LIFETIME_S;
  return { token, lifetimeS };
}

function tokenFailure(host: string, status: number): FerryError {
  if (status === 401 || status === 403)
    return new UnauthenticatedError(`token server for ${host} refused the credentials (HTTP ${status})`);
  return new UnavailableError(`token server for ${host} answered HTTP ${status}`);
}
