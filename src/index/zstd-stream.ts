// Builds a LayerIndex for a plain zstd layer (one or many frames, no TOC) in one pass over the blob stream,
// with the chunking policy of build-stream.ts; checks the layer digest at the end.
//
// Random access into zstd exists only at frame starts, so each chunk's span starts at the frame holding its
// first byte (codec 'zstd-frame', skip = bytes of that frame's output before the chunk) and ends where the
// stream had been consumed when the chunk's last byte came out. Multi-frame layers with small frames thus
// get cheap Range reads; a single-frame layer gets compressedStart 0 for every chunk: correct, but a cold
// origin read decodes from the layer start — such layers are meant to be served from the chunk cache and
// peers, which the build fills (onChunk) as the stream passes.
import { AbortedError, FerryError, FormatError } from '../errors.js';
import { DigestHasher, digestAlgorithm } from '../image/digest.js';
import type { Chunk, LayerIndex } from '../image/layer-index.js';
import { DEFAULT_CHUNK_SIZE_BYTES, LAYER_INDEX_VERSION } from '../image/layer-index.js';
import { createZstdDecoder, ZSTD_BACKEND } from '../codec/zstd-binding.js';
import { SKIPPABLE_MAGIC, ZSTD_MAGIC, ZstdFrameScanner } from '../codec/zstd-frames.js';
import type { BuildFromStreamOptions } from './build-stream.js';
import type { RawChunk } from './chunk-builder.js';
import { streamLayer } from './stream-layer.js';
import { validateIndex } from './validate-index.js';
import { TarLayerSink } from './tar-layer-sink.js';

// 2: 128 KiB packs of small files (1: packs of a whole chunk); the index format is the same.
const BUILD_TOOL = `ferry zstd-stream 2 (${ZSTD_BACKEND})`;
/**
 * Frames starting closer than this (in output) to the last recorded start join it: a chunk then decodes from
 * a frame start up to this much earlier, and a layer of millions of tiny frames keeps one record per 64 KiB.
 */
const MIN_FRAME_GAP_BYTES = 64 * 1024;

/** A data frame (with the small ones after it, see MIN_FRAME_GAP_BYTES) and where its output lies. */
export interface DecodedFrame {
  readonly compressedStart: number;
  readonly compressedEnd: number;
  readonly uncompressedStart: number;
  readonly uncompressedEnd: number;
}

export async function buildZstdIndexFromStream(
  opts: BuildFromStreamOptions,
  stream?: AsyncIterable<Buffer>,
): Promise<LayerIndex> {
  const started = Date.now();
  const label = `layer ${opts.layerDigest}`;
  const signal = opts.signal;
  const checkAbort = (): void => {
    if (signal?.aborted === true)
      throw new AbortedError(`${label}: index build aborted`, { cause: signal.reason });
  };
  checkAbort();
  const hasher = new DigestHasher(digestAlgorithm(opts.layerDigest));
  const sink = new TarLayerSink({
    label,
    chunkSizeBytes: opts.chunkSizeBytes ?? DEFAULT_CHUNK_SIZE_BYTES,
    onChunk: opts.onChunk,
    diffId: opts.diffId,
  });
  const scanner = new ZstdFrameScanner(label, false);
  const decoder = createZstdDecoder(label);
  const frames: DecodedFrame[] = [];
  let produced = 0;
  let frameOut = 0;
  const decode = (piece: Buffer, consumedAfter: number): void => {
    decoder.decode(piece, (out) => {
      sink.push(out, consumedAfter);
      produced += out.length;
      return false;
    });
  };
  // Feeds one piece, cut at frame ends so the output count at each end is the next frame's start.
  const feed = (piece: Buffer, pieceEnd: number): void => {
    const base = pieceEnd - piece.length;
    scanner.push(piece);
    let from = 0;
    // Each frame that ended in this piece, not just the last one: a big piece can hold several frame ends.
    for (const f of scanner.ended) {
      const end = f.end;
      decode(piece.subarray(from, end - base), end);
      from = end - base;
      if (!decoder.atFrameEnd) throw new FormatError(`${label}: zstd frame ending at ${end} did not end`);
      const prev = frames[frames.length - 1];
      if (!f.skippable && prev !== undefined && frameOut - prev.uncompressedStart < MIN_FRAME_GAP_BYTES) {
        // Decoding from an earlier frame start is as correct, and keeps a stream of tiny frames bounded.
        frames[frames.length - 1] = { ...prev, compressedEnd: f.end, uncompressedEnd: produced };
      } else if (!f.skippable) {
        frames.push({
          compressedStart: f.start,
          compressedEnd: f.end,
          uncompressedStart: frameOut,
          uncompressedEnd: produced,
        });
      }
      frameOut = produced;
    }
    if (from < piece.length) decode(piece.subarray(from), pieceEnd);
  };

  const { bytes, formatError } = await streamLayer({
    input: stream ?? (await opts.blob.stream(signal)),
    hasher,
    feed,
    checkAbort,
    onProgress: opts.onProgress,
  });
  sink.complete({
    label,
    layerDigest: opts.layerDigest,
    hasher,
    endDecoder: () => {
      if (formatError !== undefined) throw formatError;
      scanner.finish();
    },
  });
  const index: LayerIndex = {
    version: LAYER_INDEX_VERSION,
    layerDigest: opts.layerDigest,
    mediaType: opts.mediaType,
    format: 'zstd',
    codec: 'zstd-frame',
    compressedSize: bytes,
    uncompressedSize: produced,
    entries: sink.table.entries(),
    chunks: sink.chunker.chunks.map((c) => frameChunk(c, frames, label)),
    checkpoints: [],
    windows: [],
    build: { tool: BUILD_TOOL, createdAt: new Date(started).toISOString(), durationMs: Date.now() - started },
  };
  // What the loader would refuse is refused here, once (see build-stream.ts).
  validateIndex(index);
  return index;
}

/** The chunk's span: from the start of the frame holding its first byte to where its last byte came out. */
export function frameChunk(c: RawChunk, frames: readonly DecodedFrame[], label: string): Chunk {
  let lo = 0;
  let hi = frames.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (frames[mid]!.uncompressedStart <= c.offset) lo = mid;
    else hi = mid - 1;
  }
  // Empty frames share their start with the next one; step forward to the frame that has the byte.
  while (lo + 1 < frames.length && frames[lo]!.uncompressedEnd <= c.offset) lo++;
  const f = frames[lo];
  if (f === undefined || f.uncompressedStart > c.offset || f.uncompressedEnd <= c.offset) {
    throw new FerryError('INTERNAL', `${label}: no zstd frame holds offset ${c.offset}`);
  }
  return {
    digest: c.digest,
    offset: c.offset,
    size: c.size,
    compressedStart: f.compressedStart,
    compressedEnd: c.consumedAtEnd,
    checkpoint: -1,
    skip: c.offset - f.uncompressedStart,
  };
}

/** Reads the stream's first bytes: zstd streams go to buildZstdIndexFromStream; others come back replayable. */
export async function routeZstdStream(
  opts: BuildFromStreamOptions,
  stream: AsyncIterable<Buffer>,
): Promise<{ index: LayerIndex } | { index?: undefined; stream: AsyncIterable<Buffer> }> {
  const it = stream[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < 4) {
    const r = await it.next();
    if (r.done === true) {
      done = true;
      break;
    }
    head.push(r.value);
    have += r.value.length;
  }
  const replay: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      try {
        yield* head;
        while (!done) {
          const r = await it.next();
          if (r.done === true) done = true;
          else yield r.value;
        }
      } finally {
        // A consumer that stops early (an error, an abort) must still release the underlying stream.
        if (!done) await it.return?.();
      }
    },
  };
  const first = Buffer.concat(head).subarray(0, 4);
  const magic = first.length === 4 ? first.readUInt32LE(0) : 0;
  // A zstd stream may open with a skippable frame as well as a data frame.
  if (magic === ZSTD_MAGIC || (magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) {
    return { index: await buildZstdIndexFromStream(opts, replay) };
  }
  return { stream: replay };
}
