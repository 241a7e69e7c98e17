// A chunk's zran window when its index keeps windows apart (LayerIndex.windowsBlob): from the chunk store
// (windows are content-addressed like chunks), from the cached or in-flight chunk that ends where the window ends
// (no fetch), or a Range read of the windows blob. Every window is checked against its digest before it primes
// an inflate.
import { inflateRawSync } from 'node:zlib';
import type { ChunkStore } from '../chunks/chunk-store.js';
import { FormatError, IntegrityError } from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';
import type { BlobReader } from '../image/blob-reader.js';
import { findChunk, type LayerIndex, type WindowRef } from '../image/layer-index.js';

/** zran windows are 32 KiB at most: anything that inflates past it is not one. */
const MAX_WINDOW_BYTES = 32 * 1024;

export interface WindowStats {
  fromStore: number;
  fromChunk: number;
  /** Taken from a chunk that was still being fetched when the window was asked for (no request of its own). */
  fromInflight: number;
  fetched: number;
  fetchedBytes: number;
}

export class WindowSource {
  private readonly loading = new Map<Digest, Promise<Uint8Array>>();
  private readonly counters: WindowStats = {
    fromStore: 0,
    fromChunk: 0,
    fromInflight: 0,
    fetched: 0,
    fetchedBytes: 0,
  };

  /**
   * `inflight` names a chunk of `index` being fetched right now (its verified bytes to come), if it is.
   * `decodeParallelism` is how many chunks can decode at once (the decode pool's workers): with one, a chunk
   * decodes after the chunk before it anyway, so its window is always taken from that chunk when it is in flight.
   */
  constructor(
    private readonly store: ChunkStore | undefined,
    private readonly inflight?: InflightChunks,
    private readonly decodeParallelism = Infinity,
  ) {}

  /**
   * Window `window` of `index`, for chunk `forChunk`; `layerBlob` is the layer's reader, whose sibling is the
   * windows blob.
   */
  async get(
    index: LayerIndex,
    window: number,
    layerBlob: BlobReader,
    signal?: AbortSignal,
    forChunk?: number,
  ): Promise<Uint8Array> {
    const blob = index.windowsBlob;
    const ref = blob?.refs[window];
    if (blob === undefined || ref === undefined)
      throw new FormatError(
        `layer ${index.layerDigest}: window ${window} is neither inline nor in a windows blob`,
      );
    if (ref.size === 0) return new Uint8Array(0);
    const stored = await this.store?.get(ref.digest, signal);
    if (stored !== undefined) {
      this.counters.fromStore++;
      return stored;
    }
    let p = this.loading.get(ref.digest);
    if (p === undefined) {
      p = this.load(index, window, ref, layerBlob, blob.digest, blob.size, forChunk, signal).finally(() =>
        this.loading.delete(ref.digest),
      );
      this.loading.set(ref.digest, p);
    }
    return p;
  }

  stats(): WindowStats {
    return { ...this.counters };
  }

  private async load(
    index: LayerIndex,
    window: number,
    ref: WindowRef,
    layerBlob: BlobReader,
    blobDigest: Digest,
    blobSize: number,
    forChunk: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const label = `layer ${index.layerDigest} window ${window}`;
    const at = windowHolder(index, window, ref);
    const fromChunk = await this.fromCachedChunk(index, at, ref);
    if (fromChunk !== undefined) {
      this.counters.fromChunk++;
      return fromChunk;
    }
    const fromInflight = await this.fromInflightChunk(index, at, ref, forChunk, signal);
    if (fromInflight !== undefined) {
      this.counters.fromInflight++;
      return fromInflight;
    }
    if (layerBlob.sibling === undefined) throw new FormatError(`${label}: no way to read the windows blob`);
    const raw = await layerBlob.sibling(blobDigest, blobSize).readRange(ref.offset, ref.offset + ref.length);
    let bytes: Buffer;
    try {
      // Synchronous on purpose: at most 32 KiB of output (tens of microseconds), while zlib's async form costs a
      // pool round trip and a stream per window, one window per chunk of a cold read (bench/profile-read.ts).
      bytes = inflateRawSync(raw, { maxOutputLength: MAX_WINDOW_BYTES });
    } catch (e) {
      throw new IntegrityError(`${label}: does not inflate`, { cause: e });
    }
    if (sha256(bytes) !== ref.digest)
      throw new IntegrityError(`${label}: inflates to other bytes than its digest`);
    this.counters.fetched++;
    this.counters.fetchedBytes += raw.length;
    await this.store?.put(ref.digest, bytes).catch(() => undefined); // a full disk costs a refetch, not a read
    return bytes;
  }

  /** The window is the output right before its checkpoint: one cached chunk covering it has those bytes. */
  private async fromCachedChunk(
    index: LayerIndex,
    at: Holder | undefined,
    ref: WindowRef,
  ): Promise<Uint8Array | undefined> {
    const store = this.store;
    if (at === undefined || store === undefined) return undefined;
    const bytes = await store.get(index.chunks[at.chunk]!.digest);
    return bytes === undefined ? undefined : cut(bytes, at, ref);
  }

  /**
   * The chunk holding the window is being fetched (a cold read of adjacent chunks, a read-ahead): wait for it
   * rather than send a request of our own, when that request would be dear next to the chunk it serves — a
   * window costs a request and up to 32 KiB, which is a quarter of a 128 KiB pack but 3% of a 1 MiB chunk,
   * whose own window is better fetched in parallel than after its predecessor's decode — unless decodes run one
   * at a time (one decode worker): then a sequential read's chunk would wait for its predecessor's decode anyway,
   * and the window's own request (a second request per chunk) buys nothing. Any failure of the chunk waited for
   * falls back to fetching the window.
   */
  private async fromInflightChunk(
    index: LayerIndex,
    at: Holder | undefined,
    ref: WindowRef,
    forChunk: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array | undefined> {
    const own = forChunk === undefined ? undefined : index.chunks[forChunk];
    if (at === undefined || own === undefined || at.chunk === forChunk) return undefined;
    const cheap = ref.length * WAIT_WHEN_WINDOW_OVER < own.compressedEnd - own.compressedStart;
    if (cheap && this.decodeParallelism > 1) return undefined;
    const pending = this.inflight?.(index, at.chunk);
    if (pending === undefined || signal?.aborted === true) return undefined;
    const bytes = await pending.catch(() => undefined);
    return bytes === undefined ? undefined : cut(bytes, at, ref);
  }
}

/** A chunk's own window request is worth sending only when the window is under 1/8 of the chunk's span. */
const WAIT_WHEN_WINDOW_OVER = 8;

/** Verified bytes of chunk `chunk` of `index`, if it is being fetched now. */
export type InflightChunks = (index: LayerIndex, chunk: number) => Promise<Buffer> | undefined;

interface Holder {
  chunk: number;
  start: number;
  end: number;
}

/** The chunk whose bytes include the whole window (the output right before its checkpoint), if one does. */
function windowHolder(index: LayerIndex, window: number, ref: WindowRef): Holder | undefined {
  const cp = index.checkpoints.find((c) => c.window === window);
  if (cp === undefined) return undefined;
  const start = cp.uncompressedOffset - ref.size;
  const i = findChunk(index.chunks, start);
  const c = index.chunks[i];
  if (c === undefined || c.offset + c.size < cp.uncompressedOffset) return undefined;
  return { chunk: i, start: start - c.offset, end: cp.uncompressedOffset - c.offset };
}

function cut(bytes: Uint8Array, at: Holder, ref: WindowRef): Uint8Array | undefined {
  const w = bytes.subarray(at.start, at.end);
  return sha256(w) === ref.digest ? w : undefined;
}
