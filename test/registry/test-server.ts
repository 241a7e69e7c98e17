// A real node:http (or node:https, with a throw-away self-signed certificate this process trusts) server for
// registry-client tests: records every request, handler decides the answer.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { promisify } from 'node:util';

export interface Seen {
  method: string;
  url: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface TestServer {
  /** `127.0.0.1:PORT` */
  host: string;
  origin: string;
  seen: Seen[];
  close(): Promise<void>;
}

export type Handler = (req: Seen, res: ServerResponse) => void | Promise<void>;

export async function startServer(
  handler: Handler,
  tls?: { key: string; cert: string },
): Promise<TestServer> {
  const seen: Seen[] = [];
  const listener: RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const s: Seen = {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      seen.push(s);
      Promise.resolve(handler(s, res)).catch((e: unknown) => {
        res.statusCode = 599;
        res.end(String(e));
      });
    });
  };
  const server = tls === undefined ? createServer(listener) : createHttpsServer(tls, listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    origin: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(data.length),
    ...headers,
  });
  res.end(data);
}

let trusted: Promise<{ key: string; cert: string }> | undefined;

/**
 * A self-signed certificate for IP 127.0.0.1, made once per test file with openssl and added to this process's
 * default CA list (what undici verifies against), so https test servers are verified like any other.
 */
export function trustedLoopbackCert(): Promise<{ key: string; cert: string }> {
  trusted ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-tls-'));
    try {
      await promisify(execFile)('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ]);
      const key = await readFile(join(dir, 'key.pem'), 'utf8');
      const cert = await readFile(join(dir, 'cert.pem'), 'utf8');
      setDefaultCACertificates([...getCACertificates('default'), cert]);
      return { key, cert };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return trusted;
}
