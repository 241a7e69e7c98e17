// VerifySource: every chunk from `next` is checked against its digest and size; nothing unverified passes
// (bytes the decode pool hashed against that digest on their way in count as checked: see verified-bytes.ts).
import { createHash } from 'node:crypto';
import { digestAlgorithm } from '../image/digest.js';
import { IntegrityError } from '../errors.js';
import { chunkOf, describeChunk, type ChunkRequest, type ChunkSource } from './chunk-source.js';
import { isVerified } from './verified-bytes.js';

export interface VerifySourceOptions {
  next: ChunkSource;
}

export class VerifySource implements ChunkSource {
  private readonly next: ChunkSource;
  /** Chunks rejected (for metrics). */
  rejected = 0;

  constructor(options: VerifySourceOptions) {
    this.next = options.next;
  }

  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    const chunk = chunkOf(req);
    const bytes = await this.next.fetch(req, signal);
    if (bytes.length !== chunk.size) {
      this.rejected++;
      throw new IntegrityError(`${describeChunk(req)}: got ${bytes.length} bytes, want ${chunk.size}`);
    }
    // Bytes the decode pool already hashed against this digest (fetchChunkFromOrigin) are not hashed twice.
    if (isVerified(bytes, chunk.digest)) return bytes;
    const alg = digestAlgorithm(chunk.digest);
    const actual = `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
    if (actual !== chunk.digest) {
      this.rejected++;
      throw new IntegrityError(`${describeChunk(req)}: content digest is ${actual}`);
    }
    return bytes;
  }

  promote(req: ChunkRequest): void {
    this.next.promote?.(req);
  }
}
