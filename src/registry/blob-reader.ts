// BlobReader over HTTP Range requests to a registry blob: caches the storage redirect, re-resolves it once when
// storage refuses it (expired presigned URL), and copes with servers that ignore Range.
import type { Logger } from '../log.js';
import { FormatError, InvalidArgumentError, IntegrityError, UnavailableError } from '../errors.js';
import { handOff } from '../image/blob-reader.js';
import { DigestHasher, digestAlgorithm, type Digest } from '../image/digest.js';
import type { ImageReference } from '../image/reference.js';
import type { HttpResponse } from './http.js';
import { statusError, type RegistrySession } from './session.js';

export interface RegistryBlobReaderOptions {
  session: RegistrySession;
  log: Logger;
  ref: ImageReference;
  digest: Digest;
  /** From the manifest descriptor; saves a HEAD. */
  knownSizeBytes?: number | undefined;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/**
 * Structurally a `BlobReader` (src/source/blob-reader.ts); registry/ sits below source/ so it cannot import the
 * interface. test/registry/blob-reader.test.ts checks the assignment at compile time.
 */
export class RegistryBlobReader {
  readonly digest: Digest;
  private sizeBytes: number | undefined;
  /** The object-storage URL the registry redirected to; asked directly (no Authorization) until refused. */
  private location: URL | undefined;
  private readonly what: string;

  constructor(private readonly options: RegistryBlobReaderOptions) {
    this.digest = options.digest;
    this.sizeBytes = options.knownSizeBytes;
    this.what = `blob ${options.digest} of ${options.ref.registry}/${options.ref.repository}`;
  }

  sibling(digest: Digest, sizeBytes: number): RegistryBlobReader {
    return new RegistryBlobReader({ ...this.options, digest, knownSizeBytes: sizeBytes });
  }

  async size(signal?: AbortSignal): Promise<number> {
    if (this.sizeBytes !== undefined) return this.sizeBytes;
    const { res } = await this.options.session.call({
      ref: this.options.ref,
      method: 'HEAD',
      path: `blobs/${this.digest}`,
      what: this.what,
      signal,
      followRedirects: false,
    });
    res.body.dump();
    const length = res.headers['content-length'];
    if (res.status === 200 && length !== undefined && /^\d+$/.test(length)) {
      this.sizeBytes = Number(length);
      return this.sizeBytes;
    }
    if (res.status >= 400) throw await statusError(res, this.what);
    // Redirected or no length: the total of a one-byte Range answer tells it (stargz does the same).
    await this.readRange(0, 1, signal);
    if (this.sizeBytes === undefined)
      throw new FormatError(`${this.what}: registry does not tell the blob size`);
    return this.sizeBytes;
  }

  async readRange(start: number, end: number, signal?: AbortSignal): Promise<Buffer> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new InvalidArgumentError(`${this.what}: invalid range [${start}, ${end})`);
    }
    if (this.sizeBytes !== undefined && end > this.sizeBytes) {
      throw new FormatError(
        `${this.what}: range [${start}, ${end}) beyond the blob's ${this.sizeBytes} bytes`,
      );
    }
    if (start === end) return Buffer.alloc(0);
    const res = await this.get({ range: `bytes=${start}-${end - 1}` }, signal);
    if (res.status === 206) {
      if (/multipart\//i.test(res.headers['content-type'] ?? '')) {
        res.body.dump();
        throw new FormatError(`${this.what}: multipart answer to a single-range request`);
      }
      const m = CONTENT_RANGE.exec(res.headers['content-range'] ?? '');
      if (m === null || Number(m[1]) !== start) {
        res.body.dump();
        throw new FormatError(
          `${this.what}: bad Content-Range ${JSON.stringify(res.headers['content-range'])} for bytes ${start}-${end - 1}`,
        );
      }
      // The request bounds what is buffered, never the server's own Content-Range: a larger answer is refused.
      const last = Number(m[2]);
      if (last < start || last > end - 1) {
        res.body.dump();
        throw new FormatError(
          `${this.what}: answered bytes ${start}-${last} to a request for bytes ${start}-${end - 1}`,
        );
      }
      if (m[3] !== '*') this.sizeBytes = Number(m[3]);
      const body = await res.body.readExact(last - start + 1);
      // A buffer of its own, kept by nobody else: the decode pool may take it without a copy.
      return handOff(this.checkLength(body, start, end));
    }
    if (res.status === 200) {
      const length = res.headers['content-length'];
      if (length !== undefined && /^\d+$/.test(length)) this.sizeBytes = Number(length);
      return this.checkLength(await slice(res, start, end), start, end);
    }
    if (res.status === 416) {
      const total = /\/(\d+)$/.exec(res.headers['content-range'] ?? '')?.[1];
      if (total !== undefined) this.sizeBytes = Number(total);
      res.body.dump();
      throw new FormatError(
        `${this.what}: range [${start}, ${end}) not satisfiable${total !== undefined ? ` (blob is ${total} bytes)` : ''}`,
      );
    }
    throw await statusError(res, this.what);
  }

  async stream(signal?: AbortSignal): Promise<AsyncIterable<Buffer>> {
    const res = await this.get({}, signal, false);
    if (res.status !== 200) throw await statusError(res, this.what);
    const { digest, what } = this;
    const expected = this.sizeBytes;
    async function* verified(): AsyncGenerator<Buffer> {
      const hasher = new DigestHasher(digestAlgorithm(digest));
      let total = 0;
      for await (const chunk of res.body) {
        hasher.update(chunk);
        total += chunk.length;
        yield chunk;
      }
      if (expected !== undefined && total !== expected) {
        throw new UnavailableError(`${what}: stream ended after ${total} of ${expected} bytes`);
      }
      const got = hasher.digest();
      if (got !== digest) throw new IntegrityError(`${what}: content hashes to ${got}`);
    }
    return verified();
  }

  private checkLength(body: Buffer, start: number, end: number): Buffer {
    if (body.length === end - start) return body;
    if (this.sizeBytes !== undefined && end > this.sizeBytes) {
      throw new FormatError(
        `${this.what}: range [${start}, ${end}) beyond the blob's ${this.sizeBytes} bytes`,
      );
    }
    throw new UnavailableError(
      `${this.what}: short read, got ${body.length} of ${end - start} bytes at ${start}`,
    );
  }

  private async get(
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    deadlineCoversBody = true,
  ): Promise<HttpResponse> {
    const call = { method: 'GET' as const, headers, what: this.what, signal, deadlineCoversBody };
    const cached = this.location;
    if (cached !== undefined) {
      const res = await this.options.session.direct(cached, call);
      if (res.status !== 401 && res.status !== 403) return res;
      res.body.dump();
      this.location = undefined;
      this.options.log.debug(
        { blob: this.digest, host: cached.host, status: res.status },
        'storage refused cached redirect; re-resolving',
      );
    }
    const reply = await this.options.session.call({
      ...call,
      ref: this.options.ref,
      path: `blobs/${this.digest}`,
    });
    if (reply.redirected && reply.url.origin !== reply.endpoint.base.origin && reply.res.status < 300) {
      this.location = reply.url;
    }
    return reply.res;
  }
}

/** Bytes [start, end) of a whole-body answer; stops reading once past `end`. */
async function slice(res: HttpResponse, start: number, end: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let pos = 0;
  let got = 0;
  for await (const chunk of res.body) {
    const from = Math.max(start - pos, 0);
    const to = Math.min(end - pos, chunk.length);
    if (to > from) {
      parts.push(chunk.subarray(from, to));
      got += to - from;
    }
    pos += chunk.length;
    if (pos >= end) break;
  }
  res.body.dump();
  return Buffer.concat(parts, got);
}
