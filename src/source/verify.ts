// VerifySource: every chunk from `next` is checked against its digest and size; nothing unverified passes.
import { createHash } from 'node:crypto';
import { digestAlgorithm } from '../image/digest.js';
import { IntegrityError } from '../errors.js';
import { chunkOf, describeChunk, type ChunkRequest, type ChunkSource } from './chunk-source.js';

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
