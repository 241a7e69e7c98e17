// A chunk's zran window when its index keeps windows apart (LayerIndex.windowsBlob): from the chunk store
// (windows are content-addressed like chunks), from the cached chunk that ends where the window ends (no fetch),
// or a Range read of the windows blob. Every window is checked against its digest before it primes an inflate.
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
  fetched: number;
  fetchedBytes: number;
}

export class WindowSource {
  private readonly inflight = new Map<Digest, Promise<Uint8Array>>();
  private readonly counters: WindowStats = { fromStore: 0, fromChunk: 0, fetched: 0, fetchedBytes: 0 };

  constructor(private readonly store: ChunkStore | undefined) {}

  /** Window `window` of `index`; `layerBlob` is the layer's reader, whose sibling is the windows blob. */
  async get(
    index: LayerIndex,
    window: number,
    layerBlob: BlobReader,
    signal?: AbortSignal,
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
    let p = this.inflight.get(ref.digest);
    if (p === undefined) {
      p = this.load(index, window, ref, layerBlob, blob.digest, blob.size).finally(() =>
        this.inflight.delete(ref.digest),
      );
      this.inflight.set(ref.digest, p);
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
  ): Promise<Uint8Array> {
    const label = `layer ${index.layerDigest} window ${window}`;
    const fromChunk = await this.fromCachedChunk(index, window, ref);
    if (fromChunk !== undefined) {
      this.counters.fromChunk++;
      return fromChunk;
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
    window: number,
    ref: WindowRef,
  ): Promise<Uint8Array | undefined> {
    const cp = index.checkpoints.find((c) => c.window === window);
    if (cp === undefined || this.store === undefined) return undefined;
    const start = cp.uncompressedOffset - ref.size;
    const i = findChunk(index.chunks, start);
    const c = index.chunks[i];
    if (c === undefined || c.offset + c.size < cp.uncompressedOffset) return undefined;
    const bytes = await this.store.get(c.digest);
    if (bytes === undefined) return undefined;
    const w = bytes.subarray(start - c.offset, cp.uncompressedOffset - c.offset);
    return sha256(w) === ref.digest ? w : undefined;
  }
}
