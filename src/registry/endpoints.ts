// Which URLs serve a registry: mirrors in order then the origin, http only for insecure or loopback hosts.
import { InvalidArgumentError } from '../errors.js';
import { registryEndpointHost } from '../image/reference.js';

export interface Endpoint {
  /** Scheme, host and optional path prefix; requests go to `<base>/v2/...`. */
  readonly base: URL;
  /** The registry the request is really for; set on mirrors, sent as `ns=<registry>`. */
  readonly ns?: string;
}

export interface EndpointOptions {
  readonly insecureHosts?: readonly string[] | undefined;
  readonly mirrors?: Readonly<Record<string, readonly string[]>> | undefined;
}

export function isLoopbackHost(hostPort: string): boolean {
  const host = hostOnly(hostPort);
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `host:port`, `[::1]:5000` → the host without port and brackets. */
export function hostOnly(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(1, hostPort.indexOf(']'));
  const colon = hostPort.lastIndexOf(':');
  return colon >= 0 && hostPort.indexOf(':') === colon ? hostPort.slice(0, colon) : hostPort;
}

export function schemeFor(hostPort: string, insecureHosts: readonly string[] = []): 'http' | 'https' {
  return insecureHosts.includes(hostPort) ||
    insecureHosts.includes(hostOnly(hostPort)) ||
    isLoopbackHost(hostPort)
    ? 'http'
    : 'https';
}

function toBase(spec: string, options: EndpointOptions): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(spec)
    ? spec
    : `${schemeFor(spec, options.insecureHosts)}://${spec}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch (e) {
    throw new InvalidArgumentError(`invalid registry mirror ${JSON.stringify(spec)}`, { cause: e });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`registry mirror ${JSON.stringify(spec)} must be http or https`);
  }
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/v2$/, '');
  url.search = '';
  return url;
}

/** Endpoints to try for `registry`, in order. Push uses only the origin. */
export function endpointsFor(
  registry: string,
  options: EndpointOptions,
  includeMirrors: boolean,
): Endpoint[] {
  const host = registryEndpointHost(registry);
  const origin: Endpoint = { base: toBase(host, options) };
  if (!includeMirrors) return [origin];
  const mirrors = options.mirrors?.[registry] ?? [];
  return [...mirrors.map((m) => ({ base: toBase(m, options), ns: registry })), origin];
}

/** `<base>/v2/<repository>/<rest>` with `ns` on mirrors. */
export function endpointUrl(
  endpoint: Endpoint,
  repository: string,
  rest: string,
  query?: Record<string, string>,
): URL {
  const url = new URL(endpoint.base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v2/${repository}/${rest}`;
  for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
  if (endpoint.ns !== undefined) url.searchParams.set('ns', endpoint.ns);
  return url;
}
