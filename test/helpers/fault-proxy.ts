// An HTTP proxy in front of a registry that counts bytes and can inject faults (down, flip bits, stall),
// for tests, benchmarks and the demo's "bytes fetched" figure.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault = 'none' | 'down' | 'flip' | 'stall';

export interface ProxyStats {
  requests: number;
  rangeRequests: number;
  /** Response body bytes for blob GETs (what crossed the "registry link"). */
  blobBytes: number;
  bytes: number;
}

export class FaultProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  fault: Fault = 'none';
  readonly stats: ProxyStats = { requests: 0, rangeRequests: 0, blobBytes: 0, bytes: 0 };

  constructor(private readonly upstream: string) {}

  get host(): string {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (!a) throw new Error('proxy not started');
    return `127.0.0.1:${a.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    return this;
  }

  resetStats(): void {
    Object.assign(this.stats, { requests: 0, rangeRequests: 0, blobBytes: 0, bytes: 0 });
  }

  /** Drops every open connection (a registry dying mid-read). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    if (req.headers.range !== undefined) this.stats.rangeRequests++;
    if (this.fault === 'down') {
      req.socket.destroy();
      return;
    }
    if (this.fault === 'stall') return; // never answer
    const isBlob = /\/blobs\/sha256:/.test(req.url ?? '') && req.method === 'GET';
    const up = request(
      `http://${this.upstream}${req.url ?? '/'}`,
      { method: req.method, headers: { ...req.headers, host: this.upstream } },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let first = true;
        upRes.on('data', (chunk: Buffer) => {
          this.stats.bytes += chunk.length;
          if (isBlob) this.stats.blobBytes += chunk.length;
          if (this.fault === 'flip' && isBlob && first && chunk.length > 0) {
            const copy = Buffer.from(chunk);
            copy[copy.length >> 1] = copy[copy.length >> 1]! ^ 0x01;
            chunk = copy;
          }
          first = false;
          res.write(chunk);
        });
        upRes.on('end', () => res.end());
        upRes.on('error', () => res.destroy());
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  }
}
