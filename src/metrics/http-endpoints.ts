// The daemon's two small HTTP servers (node:http): Prometheus `/metrics` + `/healthz` + `/readyz` on a TCP
// address, and the status JSON (`GET /status`) on a unix socket only its owner may use (mode 0600).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { FerryError, InvalidArgumentError } from '../errors.js';
import type { Logger } from '../log.js';
import { bindSocketPrivately, dirWithMode } from '../private-fs.js';
import type { FerryMetrics } from './ferry-metrics.js';
import type { DaemonStatus } from './status-types.js';

export interface RunningEndpoint {
  /** `host:port` actually bound (port 0 resolved), or the socket path. */
  readonly address: string;
  close(): Promise<void>;
}

/** `127.0.0.1:9650`, `[::1]:9650`, `:9650` (all interfaces) → host and port. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  const port = Number(m?.[3]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError(`metrics.address: expected host:port, got ${JSON.stringify(address)}`);
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!), port };
}

function reply(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

function listen(server: Server, arg: { host: string; port: number } | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (typeof arg === 'string') server.listen(arg, done);
    else server.listen(arg.port, arg.host, done);
  });
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

function handler(
  route: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  log: Logger,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain', 'GET only\n');
    route(req, res).catch((e: unknown) => {
      log.warn({ err: e, path: req.url }, 'endpoint failed');
      if (!res.headersSent) reply(res, 500, 'text/plain', 'internal error\n');
      else res.destroy();
    });
  };
}

export interface MetricsServerOptions {
  address: string;
  metrics: FerryMetrics;
  /** /readyz answers 200 only when this says so (the snapshots API is serving). */
  ready: () => boolean;
  log: Logger;
}

export async function startMetricsServer(o: MetricsServerOptions): Promise<RunningEndpoint> {
  const { host, port } = parseListenAddress(o.address);
  const server = createServer(
    handler(async (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics') return reply(res, 200, o.metrics.contentType, await o.metrics.scrape());
      if (path === '/healthz') return reply(res, 200, 'text/plain', 'ok\n');
      if (path === '/readyz')
        return o.ready()
          ? reply(res, 200, 'text/plain', 'ready\n')
          : reply(res, 503, 'text/plain', 'starting\n');
      reply(res, 404, 'text/plain', 'not found: try /metrics, /healthz, /readyz\n');
    }, o.log),
  );
  try {
    await listen(server, { host, port });
  } catch (e) {
    throw new FerryError('UNAVAILABLE', `cannot serve metrics on ${o.address}: ${String(e)}`, { cause: e });
  }
  const bound = server.address();
  const actual = typeof bound === 'object' && bound !== null ? bound.port : port;
  const shown = host.includes(':') ? `[${host}]:${actual}` : `${host}:${actual}`;
  o.log.info({ address: shown }, 'metrics listening');
  return { address: shown, close: closer(server) };
}

async function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface StatusServerOptions {
  socketPath: string;
  status: () => Promise<DaemonStatus>;
  log: Logger;
}

export async function startStatusServer(o: StatusServerOptions): Promise<RunningEndpoint> {
  const path = o.socketPath;
  await dirWithMode(dirname(path), 0o755);
  const existing = await lstat(path).catch(() => undefined);
  if (existing !== undefined) {
    if (!existing.isSocket())
      throw new FerryError('FAILED_PRECONDITION', `${path} exists and is not a socket`);
    if (await isLive(path))
      throw new FerryError('FAILED_PRECONDITION', `${path} is in use: is another ferry daemon running?`);
    await unlink(path);
  }
  const server = createServer(
    handler(async (req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (url === '/status') return reply(res, 200, 'application/json', JSON.stringify(await o.status()));
      reply(res, 404, 'text/plain', 'not found: try /status\n');
    }, o.log),
  );
  await bindSocketPrivately(path, 0o600, (p) => listen(server, p)).catch((e: unknown) => {
    server.close();
    throw e;
  });
  const close = closer(server);
  return {
    address: path,
    close: async () => {
      await close();
      await unlink(path).catch(() => undefined);
    },
  };
}
