// The layer index: what a layer's read-only tree looks like and where every byte of every file lives.
// Pure types and small lookups; builders live in index/, the reader in layer/.
import type { Digest } from './digest.js';

export const LAYER_INDEX_VERSION = 1;

/** Uncompressed bytes per chunk when nothing else is said (`[index] chunkSizeBytes`, builders called without it). */
export const DEFAULT_CHUNK_SIZE_BYTES = 1024 * 1024;

/**
 * Largest pack of small files the gzip/tar/zstd builders make (never more than the chunk size): a start reads
 * small files scattered over a layer, and each cold read fetches its whole pack (bench/_chunk-policy.ts).
 */
export const DEFAULT_PACK_SIZE_BYTES = 128 * 1024;

/** How a chunk's compressed span turns into its bytes. */
export type LayerCodec =
  | 'identity' // uncompressed tar: the compressed span is the bytes
  | 'zran' // gzip: raw inflate from a checkpoint (bit offset + 32 KiB window)
  | 'gzip-member' // eStargz: the span starts a gzip member; gunzip it
  | 'zstd-frame'; // zstd, zstd:chunked: the span starts a zstd frame; decode frames until skip+size bytes

export type LayerFormat = 'tar' | 'gzip' | 'estargz' | 'zstd' | 'zstd-chunked';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'whiteout';

export interface Entry {
  /** Normalised path inside the layer: no leading `/` or `./`, no `..`, no trailing `/`; '' is the root. */
  readonly path: string;
  readonly type: EntryType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777); the type comes from `type`. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Content length for files (and for hardlinks, the target's), 0 otherwise. */
  readonly size: number;
  readonly mtimeMs: number;
  /** symlink: target as written; hardlink: the normalised path of the entry it links to. */
  readonly linkTarget?: string;
  readonly devMajor?: number;
  readonly devMinor?: number;
  /** Extended attributes, values base64 (e.g. security.capability). */
  readonly xattrs?: Readonly<Record<string, string>>;
  /** dir: `.wh..wh..opq` was present, so lower layers' children are hidden. */
  readonly opaque?: boolean;
  /** file: offset of its content in the layer's uncompressed coordinate space (see LayerIndex.chunks). */
  readonly dataOffset?: number;
  /** file: sha256 of the whole content, when the source provides or the builder computed it. */
  readonly digest?: Digest;
}

/** A zran checkpoint: where inflate can restart inside a gzip stream. */
export interface Checkpoint {
  /** Offset in the compressed blob of the first full byte after the restart point. */
  readonly compressedOffset: number;
  /** 0–7 bits of byte `compressedOffset - 1` that belong to the next deflate block. */
  readonly bits: number;
  /** Offset in the uncompressed stream where inflate resumes. */
  readonly uncompressedOffset: number;
  /** Index into LayerIndex.windows: the 32 KiB of output before the checkpoint (empty at a member start). */
  readonly window: number;
  /** True when the checkpoint is at the start of a gzip member (header not yet consumed; no window needed). */
  readonly memberStart: boolean;
}

/** One zran window inside a windows blob: raw deflate bytes at [offset, offset + length), inflating to `digest`. */
export interface WindowRef {
  readonly offset: number;
  readonly length: number;
  /** sha256 of the inflated window: a window is checked before it primes an inflate. */
  readonly digest: Digest;
  /** Inflated size (32 KiB, less early in a stream, 0 at a member start). */
  readonly size: number;
}

export interface WindowsBlob {
  /** The blob's digest, in the same repository as the layer. */
  readonly digest: Digest;
  readonly size: number;
  /** One per window, in Checkpoint.window order. */
  readonly refs: readonly WindowRef[];
}

/**
 * A chunk: a run of the layer's uncompressed bytes named by their SHA-256, the unit of fetching, caching,
 * tracing and sharing. Chunks are sorted by `offset` and do not overlap.
 */
export interface Chunk {
  readonly digest: Digest;
  /** Start in the layer's uncompressed coordinate space (the tar stream for tar/gzip; virtual for eStargz). */
  readonly offset: number;
  readonly size: number;
  /** Compressed span [compressedStart, compressedEnd) of the blob that decodes to (at least) this chunk. */
  readonly compressedStart: number;
  readonly compressedEnd: number;
  /** zran: index into LayerIndex.checkpoints to start inflating from; -1 otherwise. */
  readonly checkpoint: number;
  /** Decoded bytes to discard, from where decoding starts, before the chunk's first byte. */
  readonly skip: number;
}

export interface LayerIndex {
  readonly version: typeof LAYER_INDEX_VERSION;
  /** Digest of the compressed blob as in the manifest. */
  readonly layerDigest: Digest;
  readonly mediaType: string;
  readonly format: LayerFormat;
  readonly codec: LayerCodec;
  readonly compressedSize: number;
  /** Size of the uncompressed coordinate space (tar stream length for tar/gzip). */
  readonly uncompressedSize: number;
  /** Entries sorted by path; the root ('') is always present. */
  readonly entries: readonly Entry[];
  readonly chunks: readonly Chunk[];
  readonly checkpoints: readonly Checkpoint[];
  /**
   * zran windows, referenced by Checkpoint.window. Empty when the windows live in `windowsBlob` instead (an index
   * published for lazy nodes: what a mount needs is small, and each window travels with the chunk that needs it).
   */
  readonly windows: readonly Uint8Array[];
  /** Where the windows are when they are not inline: a separate blob of raw-deflated windows, one ref each. */
  readonly windowsBlob?: WindowsBlob;
  /** Build facts, for `ferry index` output. */
  readonly build: { readonly tool: string; readonly createdAt: string; readonly durationMs: number };
}

/** Index of the first chunk whose range contains `offset`, or -1. Chunks must be sorted by offset. */
export function findChunk(chunks: readonly Chunk[], offset: number): number {
  let lo = 0;
  let hi = chunks.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = chunks[mid]!;
    if (offset < c.offset) hi = mid - 1;
    else if (offset >= c.offset + c.size) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** The chunks covering [offset, offset + length) of the uncompressed space, in order. */
export function chunksCovering(chunks: readonly Chunk[], offset: number, length: number): number[] {
  const out: number[] = [];
  if (length <= 0) return out;
  let i = findChunk(chunks, offset);
  const end = offset + length;
  while (i >= 0 && i < chunks.length && chunks[i]!.offset < end) {
    out.push(i);
    i++;
  }
  return out;
}
