// The HTTP layer under the registry client: one undici Agent (keep-alive), a per-host concurrency limit,
// per-request deadlines, AbortSignal, and jittered exponential retries on connection errors, 5xx and 429.
import { setMaxListeners } from 'node:events';
import { Agent } from 'undici';
import type { Logger } from '../log.js';
import {
  AbortedError,
  DeadlineError,
  ResourceExhaustedError,
  UnavailableError,
  type FerryError,
} from '../errors.js';
import { parseRetryAfterMs, sleep } from './retry.js';
import { Semaphore } from './semaphore.js';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  readonly method: HttpMethod;
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | string | undefined;
  /** What is being fetched, for messages: e.g. `manifest of 127.0.0.1:5000/a/b:t`. Never holds secrets. */
  readonly what: string;
  readonly signal?: AbortSignal | undefined;
  /** Default true. Whole-blob streams say false: the deadline then covers the headers and each body stall. */
  readonly deadlineCoversBody?: boolean;
}

export interface HttpResponse {
  readonly status: number;
  readonly url: URL;
  /** Lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: ResponseBody;
}

export interface ResponseBody extends AsyncIterable<Buffer> {
  /** Reads the whole body; more than maxBytes is a ResourceExhaustedError. */
  read(maxBytes: number): Promise<Buffer>;
  /**
   * Reads a body of known length straight into one buffer of its own (no list of parts, no concatenation): more
   * than `length` bytes is a ResourceExhaustedError; fewer come back as a shorter view, for the caller to refuse.
   */
  readExact(length: number): Promise<Buffer>;
  /** Discards the body and frees the connection slot. Safe to call twice or after reading. */
  dump(): void;
}

export interface HttpTransportOptions {
  log: Logger;
  requestTimeoutMs: number;
  maxConcurrencyPerHost: number;
  /** Extra attempts after the first, for connection errors, 5xx and 429. */
  retries: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** Retry-After longer than this is cut to it. */
  retryAfterCapMs?: number;
  userAgent?: string;
}

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

export class HttpTransport {
  private readonly agent: Agent;
  private readonly semaphores = new Map<string, Semaphore>();
  private readonly log: Logger;
  private readonly retryBaseDelayMs: number;
  private readonly retryMaxDelayMs: number;
  private readonly retryAfterCapMs: number;
  private readonly userAgent: string;
  private readonly closing = new AbortController();
  private closed: Promise<void> | undefined;

  constructor(private readonly options: HttpTransportOptions) {
    if (!(options.requestTimeoutMs > 0)) throw new RangeError('requestTimeoutMs must be positive');
    if (!Number.isInteger(options.retries) || options.retries < 0)
      throw new RangeError('retries must be >= 0');
    this.log = options.log;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 200;
    this.retryMaxDelayMs = options.retryMaxDelayMs ?? 10_000;
    this.retryAfterCapMs = options.retryAfterCapMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'ferry/0.1';
    this.agent = new Agent({ keepAliveTimeout: 30_000, connect: { timeout: options.requestTimeoutMs } });
    setMaxListeners(0, this.closing.signal); // one listener per request in flight, however many
  }

  /** Sends a request, retrying transient failures. Redirects are returned, not followed. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    // close() ends every request in flight (a stalled one would otherwise hold shutdown for the whole timeout).
    const signal =
      req.signal === undefined ? this.closing.signal : AbortSignal.any([req.signal, this.closing.signal]);
    for (let attempt = 0; ; attempt++) {
      const release = await this.semaphore(req.url.host)
        .acquire(signal)
        .catch((e: unknown) => {
          throw this.closedError(req) ?? e;
        });
      const ctl = new AbortController();
      let deadlineHit = false;
      const timeoutMs = this.options.requestTimeoutMs;
      const timer = setTimeout(() => {
        deadlineHit = true;
        ctl.abort(new DeadlineError(`${req.what}: no answer from ${req.url.host} within ${timeoutMs} ms`));
      }, timeoutMs).unref();
      const onAbort = (): void => ctl.abort(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      let cleaned = false;
      const cleanup = (): void => {
        if (cleaned) return;
        cleaned = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        release();
      };
      const mapError = (e: unknown, during: string): FerryError => {
        const closed = this.closedError(req);
        if (closed !== undefined) return closed;
        if (signal?.aborted) return new AbortedError(`${req.what}: aborted`, { cause: signal.reason });
        if (deadlineHit)
          return new DeadlineError(`${req.what}: no answer from ${req.url.host} within ${timeoutMs} ms`);
        const msg = e instanceof Error ? e.message : String(e);
        return new UnavailableError(`${req.what}: ${req.method} ${req.url.host} failed ${during}: ${msg}`, {
          cause: e,
        });
      };

      let res;
      try {
        if (signal?.aborted) throw signal.reason;
        res = await this.agent.request({
          origin: req.url.origin,
          path: `${req.url.pathname}${req.url.search}`,
          method: req.method,
          headers: { 'user-agent': this.userAgent, ...req.headers },
          body: req.body ?? null,
          signal: ctl.signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
      } catch (e) {
        cleanup();
        const err = mapError(e, 'to connect');
        if (err.code !== 'UNAVAILABLE' || attempt >= this.options.retries || this.closing.signal.aborted)
          throw err;
        const delayMs = this.backoffMs(attempt);
        this.log.debug(
          { host: req.url.host, attempt, delayMs, err: err.message },
          'registry request failed; retrying',
        );
        await sleep(delayMs, signal);
        continue;
      }
      if (req.deadlineCoversBody === false) clearTimeout(timer);
      const headers = flattenHeaders(res.headers);
      if (RETRYABLE_STATUS.has(res.statusCode) && attempt < this.options.retries) {
        res.body.on('error', () => undefined);
        await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
        cleanup();
        const delayMs = this.retryDelayMs(headers['retry-after'], attempt);
        this.log.debug(
          { host: req.url.host, status: res.statusCode, attempt, delayMs },
          'registry busy; retrying',
        );
        await sleep(delayMs, signal);
        continue;
      }
      return {
        status: res.statusCode,
        url: req.url,
        headers,
        body: wrapBody(res.body, cleanup, mapError, req.what),
      };
    }
  }

  /** send() and read the whole body (bounded). */
  async request(req: HttpRequest, maxBodyBytes: number): Promise<HttpResponse & { bytes: Buffer }> {
    const res = await this.send(req);
    const bytes = await res.body.read(maxBodyBytes);
    return { ...res, bytes };
  }

  /** Closed under a read: a failure the read reports (EIO), not an interruption (EINTR) it would retry. */
  private closedError(req: HttpRequest): FerryError | undefined {
    if (!this.closing.signal.aborted || req.signal?.aborted === true) return undefined;
    return new UnavailableError(`${req.what}: the registry client is closed`);
  }

  /** Fails the requests in flight and any later one (UNAVAILABLE) and closes the connections. */
  close(): Promise<void> {
    this.closing.abort(new AbortedError('registry client closed'));
    return (this.closed ??= this.agent.destroy());
  }

  private semaphore(host: string): Semaphore {
    let s = this.semaphores.get(host);
    if (s === undefined) {
      s = new Semaphore({ permits: this.options.maxConcurrencyPerHost });
      this.semaphores.set(host, s);
    }
    return s;
  }

  private backoffMs(attempt: number): number {
    const ceiling = Math.min(this.retryMaxDelayMs, this.retryBaseDelayMs * 2 ** attempt);
    // "Equal jitter": never zero, so a herd of clients still spreads out.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private retryDelayMs(retryAfter: string | undefined, attempt: number): number {
    const fromHeader = parseRetryAfterMs(retryAfter);
    return fromHeader !== undefined ? Math.min(fromHeader, this.retryAfterCapMs) : this.backoffMs(attempt);
  }
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

function wrapBody(
  readable: AsyncIterable<unknown> & {
    destroy(): unknown;
    on(event: 'error', listener: (e: unknown) => void): unknown;
    on(event: 'data', listener: (chunk: Buffer) => void): unknown;
    on(event: 'end' | 'close', listener: () => void): unknown;
    dump(opts?: { limit: number }): Promise<void>;
  },
  cleanup: () => void,
  mapError: (e: unknown, during: string) => FerryError,
  what: string,
): ResponseBody {
  // Destroying a body early makes undici emit an AbortError nobody else listens for.
  readable.on('error', () => undefined);
  async function* iterate(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of readable) yield chunk as Buffer;
    } catch (e) {
      throw mapError(e, 'while reading the body');
    } finally {
      readable.destroy();
      cleanup();
    }
  }
  return {
    [Symbol.asyncIterator]: iterate,
    async read(maxBytes: number): Promise<Buffer> {
      const parts: Buffer[] = [];
      let total = 0;
      for await (const chunk of iterate()) {
        total += chunk.length;
        if (total > maxBytes)
          throw new ResourceExhaustedError(`${what}: response body exceeds ${maxBytes} bytes`);
        parts.push(chunk);
      }
      return Buffer.concat(parts, total);
    },
    readExact(length: number): Promise<Buffer> {
      // Its own ArrayBuffer (not a slice of Node's pool), so a decode worker can take it without a copy. Read
      // from 'data' events: two async iterators per 64 KiB socket read (undici's and iterate()) cost more main
      // thread time than the copy, sixteen times per 1 MiB chunk of a cold read.
      const out = Buffer.allocUnsafeSlow(length);
      let got = 0;
      return new Promise<Buffer>((resolve, reject) => {
        let settled = false;
        const settle = (failure: FerryError | undefined): void => {
          if (settled) return;
          settled = true;
          readable.destroy();
          cleanup();
          if (failure !== undefined) reject(failure);
          else resolve(got === length ? out : out.subarray(0, got));
        };
        readable.on('data', (chunk: Buffer) => {
          if (settled) return;
          if (got + chunk.length > length) {
            settle(new ResourceExhaustedError(`${what}: response body exceeds ${length} bytes`));
            return;
          }
          chunk.copy(out, got);
          got += chunk.length;
        });
        readable.on('end', () => settle(undefined));
        // Closed without an end or an error: what came is all there is (the caller refuses a short body).
        readable.on('close', () => settle(undefined));
        readable.on('error', (e) => settle(mapError(e, 'while reading the body')));
      });
    },
    dump(): void {
      // Reading a small remainder keeps the keep-alive connection reusable; bigger bodies are cut off.
      readable
        .dump({ limit: 64 * 1024 })
        .catch(() => readable.destroy())
        .finally(cleanup);
    },
  };
}
