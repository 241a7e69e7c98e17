// A BlobReader over an in-memory buffer, counting what was read: the fake for builders and origins.
import { Readable } from 'node:stream';
import type { BlobReader } from '../../src/image/blob-reader.js';
import { sha256, type Digest } from '../../src/image/digest.js';

export class MemoryBlobReader implements BlobReader {
  readonly digest: Digest;
  rangeCalls = 0;
  bytesRead = 0;

  constructor(
    private readonly data: Buffer,
    /** Other blobs of the "repository", for sibling(). */
    private readonly others: ReadonlyMap<Digest, Buffer> = new Map(),
  ) {
    this.digest = sha256(data);
  }

  sibling(digest: Digest): MemoryBlobReader {
    const data = this.others.get(digest);
    if (data === undefined) throw new RangeError(`no blob ${digest} next to ${this.digest}`);
    return new MemoryBlobReader(data, this.others);
  }

  size(): Promise<number> {
    return Promise.resolve(this.data.length);
  }

  readRange(start: number, end: number): Promise<Buffer> {
    if (start < 0 || end > this.data.length || start > end) {
      return Promise.reject(new RangeError(`range ${start}-${end} outside blob of ${this.data.length}`));
    }
    this.rangeCalls++;
    this.bytesRead += end - start;
    return Promise.resolve(this.data.subarray(start, end));
  }

  stream(): Promise<AsyncIterable<Buffer>> {
    const pieces: Buffer[] = [];
    for (let i = 0; i < this.data.length; i += 64 * 1024) pieces.push(this.data.subarray(i, i + 64 * 1024));
    return Promise.resolve(Readable.from(pieces) as AsyncIterable<Buffer>);
  }
}
