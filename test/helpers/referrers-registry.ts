// An OCI distribution 1.1 front for docker-registry 2.8 (which has no referrers API): serves
// GET /v2/<name>/referrers/<digest> from the manifests with a `subject` pushed through it, answers those pushes
// with `OCI-Subject`, and proxies everything else unchanged. It records every request it saw.
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Referrer {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export class ReferrersRegistry {
  private server: Server | undefined;
  /** `<name>@<subject digest>` → descriptors of manifests naming it. */
  private readonly referrers = new Map<string, Referrer[]>();
  /** `METHOD path?query` of every request, in order. */
  readonly requests: string[] = [];

  constructor(private readonly upstream: string) {}

  get host(): string {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (!a) throw new Error('referrers registry not started');
    return `127.0.0.1:${a.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      void this.handle(req, res).catch((e: unknown) => {
        res.statusCode = 502;
        res.end(String(e));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const body = Buffer.concat(await req.toArray());
    const refs = /^\/v2\/(.+)\/referrers\/([a-z0-9]+:[a-f0-9]+)$/.exec(url.pathname);
    if (refs && req.method === 'GET') {
      const all = this.referrers.get(`${refs[1]}@${refs[2]}`) ?? [];
      const want = url.searchParams.get('artifactType');
      const manifests = want === null ? all : all.filter((d) => d.artifactType === want);
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.index.v1+json',
        ...(want === null ? {} : { 'oci-filters-applied': 'artifactType' }),
      });
      res.end(
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }),
      );
      return;
    }
    const up = await this.forward(req, body);
    const headers = { ...up.headers };
    const put = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(url.pathname);
    if (put && req.method === 'PUT' && up.statusCode === 201) {
      const subject = this.recordSubject(put[1]!, req.headers['content-type'] ?? '', body);
      if (subject !== undefined) headers['oci-subject'] = subject;
    }
    res.writeHead(up.statusCode ?? 502, headers);
    res.end(up.body);
  }

  /** Lists a pushed manifest under its subject; returns the subject's digest, if it has one. */
  private recordSubject(name: string, mediaType: string, body: Buffer): string | undefined {
    const m = JSON.parse(body.toString()) as {
      subject?: { digest: string };
      artifactType?: string;
      config?: { mediaType?: string };
      annotations?: Record<string, string>;
    };
    if (m.subject === undefined) return undefined;
    const artifactType = m.artifactType ?? m.config?.mediaType;
    const key = `${name}@${m.subject.digest}`;
    const list = this.referrers.get(key) ?? [];
    list.push({
      mediaType,
      digest: `sha256:${createHash('sha256').update(body).digest('hex')}`,
      size: body.length,
      ...(artifactType !== undefined ? { artifactType } : {}),
      ...(m.annotations !== undefined ? { annotations: m.annotations } : {}),
    });
    this.referrers.set(key, list);
    return m.subject.digest;
  }

  private forward(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ statusCode: number | undefined; headers: IncomingMessage['headers']; body: Buffer }> {
    const [hostname, port] = this.upstream.split(':');
    return new Promise((resolve, reject) => {
      const up = request(
        {
          hostname,
          port: Number(port),
          method: req.method,
          path: req.url,
          headers: req.headers, // Host stays ours: the registry's upload Locations then point back here
        },
        (r) => {
          void r.toArray().then(
            (parts) =>
              resolve({
                statusCode: r.statusCode,
                headers: r.headers,
                body: Buffer.concat(parts as Buffer[]),
              }),
            reject,
          );
        },
      );
      up.on('error', reject);
      up.end(body);
    });
  }
}
