// The ChunkSource contract: "give me the bytes of chunk N of this layer", composed from middleware
// (dedupe, store-through, limit, verify, deadline) over an origin. See compose.ts for the standard stack.
import type { Chunk, LayerIndex } from '../image/layer-index.js';
import { InvalidArgumentError } from '../errors.js';

export type ChunkPriority = 'demand' | 'prefetch';

export interface ChunkRequest {
  readonly index: LayerIndex;
  readonly chunk: number;
  readonly priority: ChunkPriority;
  /**
   * Speculative work no reader is about to need (a trace or hint prefetch, an audit), unlike a sequential
   * reader's read-ahead: the limiter also holds it back while the process is busy (PrefetchPressure).
   */
  readonly background?: boolean;
}

export interface ChunkSource {
  /** Exactly the chunk's bytes (verified, when a verify layer is in the stack), or a typed FerryError. */
  fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer>;
  /**
   * A demand reader now waits for a chunk that was requested as prefetch: move it ahead if it is queued.
   * Middleware forwards it; the limiter acts on it.
   */
  promote?(req: ChunkRequest): void;
  /**
   * Bytes [from, to) of the chunk, trusted as fetch()'s are. A source that can read part of a stored chunk
   * without reading and hashing all of it implements this (part-read.ts); wrappers forward it.
   */
  fetchPart?(req: ChunkRequest, from: number, to: number, signal?: AbortSignal): Promise<Buffer>;
}

/** Bytes [from, to) of the chunk: by `source.fetchPart` when it has one, else a slice of the whole chunk. */
export async function fetchChunkPart(
  source: ChunkSource,
  req: ChunkRequest,
  from: number,
  to: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  if (source.fetchPart !== undefined) return source.fetchPart(req, from, to, signal);
  return (await source.fetch(req, signal)).subarray(from, to);
}

export function chunkOf(req: ChunkRequest): Chunk {
  const c = req.index.chunks[req.chunk];
  if (c === undefined) {
    throw new InvalidArgumentError(
      `chunk ${req.chunk} out of range (layer ${req.index.layerDigest} has ${req.index.chunks.length} chunks)`,
    );
  }
  return c;
}

/** "chunk 3 (sha256:ab…) of layer sha256:cd…", for error messages and logs. */
export function describeChunk(req: ChunkRequest): string {
  const c = req.index.chunks[req.chunk];
  return `chunk ${req.chunk}${c ? ` (${c.digest})` : ''} of layer ${req.index.layerDigest}`;
}
