// OriginSource: adapts a chunk-fetch function (fetchChunkFromOrigin in origin.ts) and a per-layer BlobReader
// to the ChunkSource interface, counting what the origin served.
import type { LayerIndex } from '../image/layer-index.js';
import type { BlobReader } from '../image/blob-reader.js';
import { chunkOf, type ChunkRequest, type ChunkSource } from './chunk-source.js';

export type OriginFetch = (
  index: LayerIndex,
  chunkIndex: number,
  blob: BlobReader,
  signal?: AbortSignal,
) => Promise<Buffer>;

export interface OriginSourceOptions {
  blobFor(index: LayerIndex): BlobReader;
  fetch: OriginFetch;
}

export interface TierCounter {
  chunks: number;
  bytes: number;
}

export class OriginSource implements ChunkSource {
  private readonly blobFor: (index: LayerIndex) => BlobReader;
  private readonly fetchChunk: OriginFetch;
  private readonly counter: TierCounter = { chunks: 0, bytes: 0 };

  constructor(options: OriginSourceOptions) {
    this.blobFor = (index) => options.blobFor(index);
    this.fetchChunk = options.fetch;
  }

  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    chunkOf(req); // range check before any I/O
    const bytes = await this.fetchChunk(req.index, req.chunk, this.blobFor(req.index), signal);
    this.counter.chunks++;
    this.counter.bytes += bytes.length;
    return bytes;
  }

  stats(): TierCounter {
    return { ...this.counter };
  }
}
