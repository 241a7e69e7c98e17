// Builds a LayerIndex for a plain tar or gzip layer in one pass over the blob stream (zran checkpoints for
// gzip), verifying the layer digest at the end.
//
// Chunking policy: a regular file of at least chunkSizeBytes/4 gets chunks of its own, aligned to its data
// start and split every chunkSizeBytes, so identical big files produce identical chunks (dedup across layers).
// Smaller files are packed, whole (no small file straddles two chunks): a shared chunk covers the stream from
// the first packed file's data start to the last one's data end (tar headers in between included); it closes
// when the next file would take it past packSizeBytes (DEFAULT_PACK_SIZE_BYTES, 128 KiB), or before a big
// file. So regions of small files get small chunks and big files big ones. Each chunk start also gets a zran
// checkpoint at the deflate block boundary just before it (not closer than 64 KiB to the previous one).
// Measured on bench/cold-start's image (bench/_chunk-policy.ts; windows apart, fetched with their chunk), the
// start's chunk + window bytes: 1 MiB packs 25.8 MB, 512 KiB 22.2, 256 KiB 19.4, 128 KiB 18.1, 64 KiB 17.6;
// chunks 174 → 502 (128 KiB), index 0.22 → 0.25 MB, windows blob (stored, fetched per chunk) 3.5 → 6.3 MB.
// Below 128 KiB the windows eat the gain. Compressibility does not change that: a pack's own compressed bytes
// and its window's both scale with the local ratio (1 500 small files, gzip -6: text 26 KiB / 6.5 KiB, random
// 110 KiB / 27 KiB), so "pack >= k windows" is a size rule; growing packs to the next deflate block boundary
// (no skip) or to 1.5-4 packs made the start's bytes 18.2 -> 18.3-19.6 MB in that model. Empty files need no
// chunk. Every file byte lies in exactly one chunk; chunks are sorted and disjoint.
import { AbortedError, FerryError, FormatError } from '../errors.js';
import { DigestHasher, digestAlgorithm, type Digest } from '../image/digest.js';
import { INDEX_LIMITS } from '../image/index-limits.js';
import type { Checkpoint, Chunk, LayerIndex } from '../image/layer-index.js';
import { DEFAULT_CHUNK_SIZE_BYTES, LAYER_INDEX_VERSION } from '../image/layer-index.js';
import type { BlobReader } from '../image/blob-reader.js';
import { GzipIndexer } from '../codec/gzip-indexer.js';
import type { RawChunk } from './chunk-builder.js';
import { streamLayer } from './stream-layer.js';
import { validateIndex } from './validate-index.js';
import { TarLayerSink } from './tar-layer-sink.js';
import { routeZstdStream } from './zstd-stream.js';

/** Extra compressed bytes past the measured end, in case a decoder reads ahead of where output stopped. */
const COMPRESSED_END_MARGIN_BYTES = 64;
// 2: 128 KiB packs of small files (1: packs of a whole chunk); the index format is the same.
const BUILD_TOOL = 'ferry build-stream 2';

export interface BuildFromStreamOptions {
  layerDigest: Digest;
  mediaType: string;
  blob: BlobReader;
  chunkSizeBytes?: number;
  /** Largest pack of small files; see the chunking policy above. */
  packSizeBytes?: number;
  spanBytes?: number;
  signal?: AbortSignal;
  onProgress?: (compressedBytes: number) => void;
  onChunk?: (chunkIndex: number, bytes: Buffer, digest: Digest) => void;
  /** The image config's diffID for this layer: the uncompressed stream must hash to it. */
  diffId?: Digest;
}

type Kind = 'unknown' | 'tar' | 'gzip';

export async function buildIndexFromStream(opts: BuildFromStreamOptions): Promise<LayerIndex> {
  const started = Date.now();
  const label = `layer ${opts.layerDigest}`;
  const signal = opts.signal;
  const checkAbort = (): void => {
    if (signal?.aborted === true)
      throw new AbortedError(`${label}: index build aborted`, { cause: signal.reason });
  };
  checkAbort();
  const hasher = new DigestHasher(digestAlgorithm(opts.layerDigest));
  let gz: GzipIndexer | undefined;
  const sink = new TarLayerSink({
    label,
    chunkSizeBytes: opts.chunkSizeBytes ?? DEFAULT_CHUNK_SIZE_BYTES,
    packSizeBytes: opts.packSizeBytes,
    // A checkpoint right before each chunk keeps a chunk fetch close to the chunk's own compressed size.
    onPlanned: (start) => gz?.checkpointBefore(start),
    onChunk: opts.onChunk,
    diffId: opts.diffId,
  });
  const output = (bytes: Uint8Array, consumed: number): void => {
    sink.push(bytes, consumed);
    // Each holds a 32 KiB window; the ratio cap in the sink bounds them too, this bounds the index.
    if (gz !== undefined && gz.checkpoints.length > INDEX_LIMITS.maxCheckpoints) {
      throw new FormatError(`${label}: more than ${INDEX_LIMITS.maxCheckpoints} zran checkpoints`);
    }
  };

  let kind: Kind = 'unknown';
  let head = Buffer.alloc(0);
  // The first 4 bytes tell gzip from tar: they are held back until then, and fed together.
  const feed = (piece: Buffer, end: number): void => {
    if (kind === 'unknown') {
      head = Buffer.concat([head, piece]);
      if (head.length < 4) return;
      kind = detect(head, label);
      if (kind === 'gzip') gz = new GzipIndexer({ label, ...spanOpt(opts.spanBytes) });
      piece = head;
    }
    if (gz !== undefined) gz.push(piece, output);
    else output(piece, end);
  };

  const routed = await routeZstdStream(opts, await opts.blob.stream(signal));
  if (routed.index !== undefined) return routed.index;
  const { bytes: compressed, formatError } = await streamLayer({
    input: routed.stream,
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
      if (kind === 'unknown') {
        kind = detect(head, label);
        if (kind === 'gzip') throw new FormatError(`${label}: truncated gzip stream of ${head.length} bytes`);
        feed(head, compressed);
      }
      gz?.finish();
    },
  });
  const uncompressedSize = gz !== undefined ? gz.uncompressedProduced : compressed;
  const checkpoints: Checkpoint[] = gz?.checkpoints ?? [];
  const index: LayerIndex = {
    version: LAYER_INDEX_VERSION,
    layerDigest: opts.layerDigest,
    mediaType: opts.mediaType,
    format: gz !== undefined ? 'gzip' : 'tar',
    codec: gz !== undefined ? 'zran' : 'identity',
    compressedSize: compressed,
    uncompressedSize,
    entries: sink.table.entries(),
    chunks: sink.chunker.chunks.map((c) =>
      gz !== undefined ? zranChunk(c, checkpoints, compressed) : identityChunk(c),
    ),
    checkpoints,
    windows: gz?.windows ?? [],
    build: { tool: BUILD_TOOL, createdAt: new Date(started).toISOString(), durationMs: Date.now() - started },
  };
  // What the loader would refuse (a media type the bytes contradict, a 300-byte name) is refused here, once.
  validateIndex(index);
  return index;
}

function spanOpt(spanBytes: number | undefined): { spanBytes?: number } {
  return spanBytes !== undefined ? { spanBytes } : {};
}

function detect(head: Buffer, label: string): Kind {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) {
    throw new FerryError('UNIMPLEMENTED', `${label}: zstd layers are not supported yet`);
  }
  return 'tar';
}

function identityChunk(c: RawChunk): Chunk {
  return {
    digest: c.digest,
    offset: c.offset,
    size: c.size,
    compressedStart: c.offset,
    compressedEnd: c.offset + c.size,
    checkpoint: -1,
    skip: 0,
  };
}

function zranChunk(c: RawChunk, checkpoints: readonly Checkpoint[], compressedSize: number): Chunk {
  let lo = 0;
  let hi = checkpoints.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (checkpoints[mid]!.uncompressedOffset <= c.offset) lo = mid;
    else hi = mid - 1;
  }
  const cp = checkpoints[lo];
  if (cp === undefined || cp.uncompressedOffset > c.offset)
    throw new FerryError('INTERNAL', `no checkpoint before ${c.offset}`);
  return {
    digest: c.digest,
    offset: c.offset,
    size: c.size,
    compressedStart: cp.memberStart || cp.bits === 0 ? cp.compressedOffset : cp.compressedOffset - 1,
    compressedEnd: Math.min(compressedSize, c.consumedAtEnd + COMPRESSED_END_MARGIN_BYTES),
    checkpoint: lo,
    skip: c.offset - cp.uncompressedOffset,
  };
}
