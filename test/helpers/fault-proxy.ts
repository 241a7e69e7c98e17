// An HTTP proxy in front of a registry that counts bytes and injects faults per request kind (manifest, whole
// blob, blob range): delay, drop, reset mid-body, 5xx/429 (+Retry-After), truncate, ignore Range, flip bits, stall.
// Records when each request started and when its response ended (`requestLog`).
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Whole-proxy faults kept for older tests: `down` drops every request, `flip`/`stall` as the rules below. */
export type Fault = 'none' | 'down' | 'flip' | 'stall';

/** What a request asks for: a manifest, a whole blob (GET without Range), a blob range, or anything else. */
export type RequestKind = 'manifest' | 'blob' | 'range' | 'other';
export const ALL_KINDS: readonly RequestKind[] = ['manifest', 'blob', 'range', 'other'];

export type FaultRule =
  /** Answer normally, but only after `ms`. */
  | { type: 'delay'; ms: number }
  /** Close the connection without answering. */
  | { type: 'drop' }
  /** Send the headers and the first `afterBytes` of the body, then reset the connection. */
  | { type: 'reset'; afterBytes: number }
  /** Answer with this status (e.g. 500, 503, 429) and an optional Retry-After, never asking upstream. */
  | { type: 'status'; status: number; retryAfterS?: number }
  /** Send only the first `bytes` of the body and end the response cleanly (chunked, no Content-Length). */
  | { type: 'truncate'; bytes: number }
  /** Forward without the Range header: the registry answers 200 with the whole blob. */
  | { type: 'ignoreRange' }
  /** Flip one bit in the middle of the first body chunk. */
  | { type: 'flip' }
  /**
   * Flip one bit `fromEnd` bytes before the end of the body (needs a Content-Length) of blob `digest`: a blob
   * whose bytes are right until late in the stream. Other blobs pass untouched.
   */
  | { type: 'flipTail'; fromEnd: number; digest: string }
  /** Never answer. */
  | { type: 'stall' };

interface ActiveRule {
  rule: FaultRule;
  /** Requests still to fault; Infinity until cleared. */
  remaining: number;
}

export interface ProxyStats {
  requests: number;
  rangeRequests: number;
  /** Response body bytes for blob GETs (what crossed the "registry link"). */
  blobBytes: number;
  bytes: number;
  /** Requests a rule applied to. */
  faulted: number;
}

/** One request through the proxy: when it arrived and when its response ended (ms, performance.now()). */
export interface LoggedRequest {
  method: string;
  url: string;
  kind: RequestKind;
  startMs: number;
  endMs: number | undefined;
}

export function requestKind(req: {
  method?: string | undefined;
  url?: string | undefined;
  headers: { range?: string | undefined };
}): RequestKind {
  const url = req.url ?? '';
  if (/\/manifests\//.test(url)) return 'manifest';
  if (/\/blobs\/sha256:/.test(url) && (req.method === 'GET' || req.method === 'HEAD'))
    return req.headers.range !== undefined ? 'range' : 'blob';
  return 'other';
}

export class FaultProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly rules = new Map<RequestKind, ActiveRule>();
  fault: Fault = 'none';
  readonly stats: ProxyStats = { requests: 0, rangeRequests: 0, blobBytes: 0, bytes: 0, faulted: 0 };
  readonly requestLog: LoggedRequest[] = [];

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

  /** Applies `rule` to requests of `kinds` (the next `count` of them, or all until cleared). */
  inject(kinds: RequestKind | readonly RequestKind[], rule: FaultRule, count = Infinity): void {
    for (const k of typeof kinds === 'string' ? [kinds] : kinds)
      this.rules.set(k, { rule, remaining: count });
  }

  /** Removes the rules for `kinds` (all when omitted) and the whole-proxy fault. */
  clear(kinds?: RequestKind | readonly RequestKind[]): void {
    if (kinds === undefined) {
      this.rules.clear();
      this.fault = 'none';
      return;
    }
    for (const k of typeof kinds === 'string' ? [kinds] : kinds) this.rules.delete(k);
  }

  resetStats(): void {
    Object.assign(this.stats, { requests: 0, rangeRequests: 0, blobBytes: 0, bytes: 0, faulted: 0 });
    this.requestLog.length = 0;
  }

  /** Drops every open connection (a registry dying mid-read). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private ruleFor(kind: RequestKind): FaultRule | undefined {
    if (this.fault === 'down') return { type: 'drop' };
    if (this.fault === 'stall') return { type: 'stall' };
    if (this.fault === 'flip' && (kind === 'blob' || kind === 'range')) return { type: 'flip' };
    const active = this.rules.get(kind);
    if (active === undefined) return undefined;
    if (--active.remaining <= 0) this.rules.delete(kind);
    return active.rule;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    if (req.headers.range !== undefined) this.stats.rangeRequests++;
    const kind = requestKind(req);
    const logged: LoggedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      kind,
      startMs: performance.now(),
      endMs: undefined,
    };
    this.requestLog.push(logged);
    res.on('close', () => (logged.endMs = performance.now()));
    const rule = this.ruleFor(kind);
    if (rule !== undefined) this.stats.faulted++;
    switch (rule?.type) {
      case 'drop':
        req.socket.destroy();
        return;
      case 'stall':
        return;
      case 'status': {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (rule.retryAfterS !== undefined) headers['retry-after'] = String(rule.retryAfterS);
        res.writeHead(rule.status, headers);
        res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }));
        return;
      }
      case 'delay': {
        const timer = setTimeout(() => this.forward(req, res, kind, undefined), rule.ms);
        req.socket.on('close', () => clearTimeout(timer));
        return;
      }
      default:
        this.forward(req, res, kind, rule);
    }
  }

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    kind: RequestKind,
    rule: FaultRule | undefined,
  ): void {
    if (req.socket.destroyed) return;
    const isBlob = kind === 'blob' || kind === 'range';
    const headers = { ...req.headers, host: this.upstream };
    if (rule?.type === 'ignoreRange') delete headers.range;
    const up = request(
      `http://${this.upstream}${req.url ?? '/'}`,
      { method: req.method, headers },
      (upRes) => {
        const outHeaders = { ...upRes.headers };
        const cut =
          rule?.type === 'truncate' ? rule.bytes : rule?.type === 'reset' ? rule.afterBytes : Infinity;
        // A clean early end needs a body without a length the client could check against.
        if (rule?.type === 'truncate') delete outHeaders['content-length'];
        res.writeHead(upRes.statusCode ?? 502, outHeaders);
        let sent = 0;
        let first = true;
        const length = Number(upRes.headers['content-length'] ?? NaN);
        const flipAt =
          rule?.type === 'flipTail' && isBlob && (req.url ?? '').includes(rule.digest)
            ? length - rule.fromEnd
            : -1;
        upRes.on('data', (chunk: Buffer) => {
          if (sent >= cut) return;
          this.stats.bytes += chunk.length;
          if (isBlob) this.stats.blobBytes += chunk.length;
          if (rule?.type === 'flip' && isBlob && first && chunk.length > 0) {
            const copy = Buffer.from(chunk);
            copy[copy.length >> 1] = copy[copy.length >> 1]! ^ 0x01;
            chunk = copy;
          }
          first = false;
          if (flipAt >= sent && flipAt < sent + chunk.length) {
            const copy = Buffer.from(chunk);
            copy[flipAt - sent] = copy[flipAt - sent]! ^ 0x01;
            chunk = copy;
          }
          if (sent + chunk.length >= cut) {
            res.write(chunk.subarray(0, cut - sent));
            sent = cut;
            upRes.destroy();
            if (rule?.type === 'truncate') res.end();
            else res.socket?.resetAndDestroy();
            return;
          }
          sent += chunk.length;
          res.write(chunk);
        });
        upRes.on('end', () => {
          if (sent < cut) res.end();
        });
        upRes.on('error', () => res.destroy());
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  }
}
