// One authenticated registry call: endpoint choice (mirrors, then origin), 401 → authorize → retry once, and
// redirects and upload locations followed without sending the registry's Authorization to another origin and
// never from https down to plain http.
import type { Logger } from '../log.js';
import { FerryError, FormatError, NotFoundError, UnavailableError, isFerryError } from '../errors.js';
import type { ImageReference } from '../image/reference.js';
import { UnauthenticatedError, type Authenticator } from './auth.js';
import { endpointUrl, endpointsFor, type Endpoint, type EndpointOptions } from './endpoints.js';
import type { HttpMethod, HttpResponse, HttpTransport } from './http.js';

export interface RegistryCall {
  /** Only registry and repository are used. */
  readonly ref: ImageReference;
  readonly method: HttpMethod;
  /** After `/v2/<repository>/` (e.g. `manifests/latest`), or an absolute URL on the origin (upload locations). */
  readonly path: string | URL;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | string | undefined;
  /** Asks for pull+push scope and uses the origin only. */
  readonly push?: boolean;
  readonly what: string;
  readonly signal?: AbortSignal | undefined;
  /** Default true. */
  readonly followRedirects?: boolean;
  readonly deadlineCoversBody?: boolean;
}

export interface RegistryReply {
  readonly res: HttpResponse;
  readonly endpoint: Endpoint;
  /** Where the final response came from; differs from the first URL after redirects. */
  readonly url: URL;
  readonly redirected: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export interface RegistrySessionOptions {
  http: HttpTransport;
  auth: Authenticator;
  log: Logger;
  endpoints: EndpointOptions;
}

export class RegistrySession {
  constructor(private readonly options: RegistrySessionOptions) {}

  get http(): HttpTransport {
    return this.options.http;
  }

  /** Sends the call; a mirror that fails or lacks the content is skipped, the origin's answer is returned as is. */
  async call(call: RegistryCall): Promise<RegistryReply> {
    const endpoints = endpointsFor(call.ref.registry, this.options.endpoints, call.push !== true);
    for (let i = 0; ; i++) {
      const endpoint = endpoints[i];
      if (endpoint === undefined) throw new Error('unreachable: no endpoint');
      const last = i === endpoints.length - 1;
      if (last) return this.callEndpoint(call, endpoint);
      try {
        const reply = await this.callEndpoint(call, endpoint);
        if (reply.res.status < 400) return reply;
        reply.res.body.dump();
        this.options.log.debug(
          { mirror: endpoint.base.host, status: reply.res.status },
          'mirror miss; trying next',
        );
      } catch (e) {
        if (isFerryError(e, 'ABORTED')) throw e;
        this.options.log.debug({ mirror: endpoint.base.host, err: String(e) }, 'mirror failed; trying next');
      }
    }
  }

  /** Plain GET/HEAD of a URL outside the registry (cached storage redirects): no Authorization is sent. */
  async direct(url: URL, call: Omit<RegistryCall, 'ref' | 'path' | 'push'>): Promise<HttpResponse> {
    return this.options.http.send({ ...call, url, headers: call.headers ?? {} });
  }

  private async callEndpoint(call: RegistryCall, endpoint: Endpoint): Promise<RegistryReply> {
    const scope = `repository:${call.ref.repository}:${call.push === true ? 'pull,push' : 'pull'}`;
    const host = endpoint.base.host;
    const first =
      typeof call.path === 'string'
        ? endpointUrl(endpoint, call.ref.repository, call.path, call.query)
        : call.path;
    checkScheme(endpoint.base, first, call.what);
    // An upload Location may name another origin (a storage front end): it gets the request, not our credentials.
    let res =
      first.origin === endpoint.base.origin
        ? await this.sendAuthed(call, first, host, scope, this.options.auth.cached(host, scope))
        : await this.options.http.send({ ...call, url: first, headers: withoutAuthorization(call.headers) });
    let url = first;
    let method = call.method;
    let hops = 0;
    while (REDIRECTS.has(res.status) && call.followRedirects !== false) {
      const location = res.headers['location'];
      res.body.dump();
      if (location === undefined)
        throw new FormatError(`${call.what}: HTTP ${res.status} from ${url.host} without Location`);
      if (++hops > MAX_REDIRECTS)
        throw new UnavailableError(`${call.what}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, url);
      checkScheme(url, next, call.what);
      url = next;
      if (res.status === 303 && method !== 'HEAD') method = 'GET';
      const sameHost = url.origin === endpoint.base.origin;
      const hop = { ...call, method, ...(method === 'GET' || method === 'HEAD' ? { body: undefined } : {}) };
      res = sameHost
        ? await this.sendAuthed(hop, url, host, scope, this.options.auth.cached(host, scope))
        : await this.options.http.send({ ...hop, url, headers: withoutAuthorization(call.headers) });
    }
    return { res, endpoint, url, redirected: hops > 0 };
  }

  private async sendAuthed(
    call: Omit<RegistryCall, 'path'>,
    url: URL,
    host: string,
    scope: string,
    authorization: string | undefined,
  ): Promise<HttpResponse> {
    const send = (auth: string | undefined): Promise<HttpResponse> =>
      this.options.http.send({
        method: call.method,
        url,
        headers: { ...call.headers, ...(auth !== undefined ? { authorization: auth } : {}) },
        ...(call.body !== undefined ? { body: call.body } : {}),
        what: call.what,
        signal: call.signal,
        ...(call.deadlineCoversBody !== undefined ? { deadlineCoversBody: call.deadlineCoversBody } : {}),
      });
    const res = await send(authorization);
    if (res.status !== 401) return res;
    const challenge = res.headers['www-authenticate'];
    res.body.dump();
    if (challenge === undefined)
      throw new UnauthenticatedError(`${call.what}: registry ${host} answered 401 without a challenge`);
    if (authorization !== undefined) this.options.auth.invalidate(host, scope);
    const fresh = await this.options.auth.authorize(host, scope, challenge, call.signal);
    const again = await send(fresh);
    if (again.status === 401) {
      again.body.dump();
      this.options.auth.invalidate(host, scope);
      throw new UnauthenticatedError(`${call.what}: registry ${host} refused the credentials`);
    }
    return again;
  }
}

/** A hop from https to anything but https (plain http, or another scheme) is refused: it would expose the request. */
function checkScheme(from: URL, to: URL, what: string): void {
  if (to.protocol !== 'http:' && to.protocol !== 'https:')
    throw new FerryError('FAILED_PRECONDITION', `${what}: refusing ${to.protocol} URL from ${from.host}`);
  if (from.protocol === 'https:' && to.protocol !== 'https:')
    throw new FerryError(
      'FAILED_PRECONDITION',
      `${what}: ${from.host} sent Ferry from https to plain http (${to.host}); refused`,
    );
}

function withoutAuthorization(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) if (k.toLowerCase() !== 'authorization') out[k] = v;
  return out;
}

/** Turns a non-success response into a typed error, reading a little of the registry's error JSON. */
export async function statusError(res: HttpResponse, what: string): Promise<FerryError> {
  let detail = '';
  try {
    const body = await res.body.read(64 * 1024);
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    const first = (parsed as { errors?: Array<{ code?: unknown; message?: unknown }> }).errors?.[0];
    if (first !== undefined) detail = `: ${String(first.code)} ${String(first.message)}`.slice(0, 300);
  } catch {
    res.body.dump();
  }
  const text = `${what}: HTTP ${res.status}${detail}`;
  if (res.status === 404) return new NotFoundError(text);
  if (res.status === 401) return new UnauthenticatedError(text);
  if (res.status === 403) return new FerryError('PERMISSION_DENIED', text);
  if (res.status === 429 || res.status >= 500) return new UnavailableError(text);
  return new FormatError(text);
}
