// OriginSource: adapts a chunk-fetch function (fetchChunkFromOrigin in origin.ts) and a per-layer BlobReader
// to the ChunkSource interface, counting what the origin served. A chunk whose zran window is kept apart from
// its index gets the window from a WindowSource, read alongside the chunk's span, or taken from the chunk
// before it when that one is being fetched at the same time. Range reads of one blob asked for together are
// merged (RangeCoalescer). A chunk its blob's repository fails to give (wrong bytes, gone, down) is asked of the
// other repositories known to hold that blob: blobs are content-addressed, and every chunk is verified.
import type { ChunkStore } from '../chunks/chunk-store.js';
import { lazyWindowOf } from '../codec/chunk-job.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { BlobReader } from '../image/blob-reader.js';
import { chunkOf, type ChunkPriority, type ChunkRequest, type ChunkSource } from './chunk-source.js';
import { RangeCoalescer, type CoalesceStats } from './coalesce-ranges.js';
import { WindowSource, type WindowStats } from './window-source.js';

export type OriginFetch = (
  index: LayerIndex,
  chunkIndex: number,
  blob: BlobReader,
  signal?: AbortSignal,
  /** The chunk's zran window when the index does not hold it inline. */
  window?: Promise<Uint8Array>,
  /** A prefetch's decode waits while a reader's is queued. */
  priority?: ChunkPriority,
) => Promise<Buffer>;

export interface OriginSourceOptions {
  blobFor(index: LayerIndex): BlobReader;
  /** Other places holding `index`'s blob, tried in turn after `blobFor`'s failed with `error`. */
  otherBlobsFor?: ((index: LayerIndex, error: unknown) => BlobReader[]) | undefined;
  fetch: OriginFetch;
  /** Where fetched windows are kept (the node's chunk store); without it every window is fetched again. */
  store?: ChunkStore | undefined;
  /** A reader now waits for a chunk fetched as prefetch (the decode pool moves its job ahead). */
  promote?: ((req: ChunkRequest) => void) | undefined;
}

export interface TierCounter {
  chunks: number;
  bytes: number;
}

export class OriginSource implements ChunkSource {
  private readonly blobFor: (index: LayerIndex) => BlobReader;
  private readonly otherBlobsFor: (index: LayerIndex, error: unknown) => BlobReader[];
  private readonly fetchChunk: OriginFetch;
  private readonly counter: TierCounter = { chunks: 0, bytes: 0 };
  private readonly windows: WindowSource;
  private readonly coalescer = new RangeCoalescer();
  /** Fetches under way, by index and chunk: a later chunk's window may come from one of them. */
  private readonly inflight = new WeakMap<LayerIndex, Map<number, Promise<Buffer>>>();
  private readonly onPromote: ((req: ChunkRequest) => void) | undefined;

  constructor(options: OriginSourceOptions) {
    this.blobFor = (index) => this.coalescer.wrap(options.blobFor(index));
    this.otherBlobsFor = (index, error) =>
      (options.otherBlobsFor?.(index, error) ?? []).map((b) => this.coalescer.wrap(b));
    this.fetchChunk = options.fetch;
    this.onPromote = options.promote;
    this.windows = new WindowSource(options.store, (index, chunk) => this.inflight.get(index)?.get(chunk));
  }

  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    chunkOf(req); // range check before any I/O
    try {
      return await this.fetchFrom(req, this.blobFor(req.index), signal);
    } catch (e) {
      if (signal?.aborted === true) throw e;
      for (const other of this.otherBlobsFor(req.index, e)) {
        try {
          return await this.fetchFrom(req, other, signal);
        } catch {
          signal?.throwIfAborted();
        }
      }
      throw e;
    }
  }

  private async fetchFrom(req: ChunkRequest, blob: BlobReader, signal?: AbortSignal): Promise<Buffer> {
    const w = lazyWindowOf(req.index, req.chunk);
    const window = w === undefined ? undefined : this.windows.get(req.index, w, blob, signal, req.chunk);
    // A window that fails while the span is still being read must not become an unhandled rejection.
    window?.catch(() => undefined);
    const p = this.fetchChunk(req.index, req.chunk, blob, signal, window, req.priority);
    let flights = this.inflight.get(req.index);
    if (flights === undefined) this.inflight.set(req.index, (flights = new Map<number, Promise<Buffer>>()));
    const mine = flights;
    mine.set(req.chunk, p);
    try {
      const bytes = await p;
      this.counter.chunks++;
      this.counter.bytes += bytes.length;
      return bytes;
    } finally {
      if (mine.get(req.chunk) === p) mine.delete(req.chunk);
    }
  }

  promote(req: ChunkRequest): void {
    this.onPromote?.(req);
  }

  stats(): TierCounter {
    return { ...this.counter };
  }

  windowStats(): WindowStats {
    return this.windows.stats();
  }

  rangeStats(): CoalesceStats {
    return this.coalescer.stats();
  }
}
