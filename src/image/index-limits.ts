// Caps on what a layer (while its index is built) or a layer index (when it is loaded) may hold: one table,
// so that whatever a builder accepts, the loader accepts too, and a hostile input ends in a FormatError.
const KiB = 1024;
const MiB = 1024 * KiB;

export const INDEX_LIMITS = {
  /**
   * A serialized index's JSON header. A file entry costs ~260 bytes of JSON (path, ids, offsets, a sha256),
   * so this admits ~500k files — the largest real layers (conda envs, node_modules monorepos, TeX Live)
   * hold 150k–350k.
   */
  maxHeaderJsonBytes: 128 * MiB,
  /**
   * Inflating the header may produce at most this many times its compressed length (with a 16 MiB floor):
   * index JSON compresses 4–10x (digests are hex), a gzip bomb ~1000x.
   */
  maxHeaderInflateRatio: 64,
  minHeaderInflateBytes: 16 * MiB,
  maxEntries: 1_000_000,
  /** A 1 TiB layer cut in 1 MiB chunks. */
  maxChunks: 1_000_000,
  /** Each holds a 32 KiB window: one per chunk start and per 2 MiB span. */
  maxCheckpoints: 1_000_000,
  /** Chunks are 1 MiB by default; TOC formats choose their own (eStargz 4 MiB, zstd:chunked files whole). */
  maxChunkBytes: 64 * MiB,
  /** Linux PATH_MAX and NAME_MAX. */
  maxPathBytes: 4096,
  maxNameBytes: 255,
  maxLinkTargetBytes: 4096,
  /** Linux XATTR_NAME_MAX and XATTR_SIZE_MAX; far more xattrs per file than any real image carries. */
  maxXattrsPerEntry: 128,
  maxXattrNameBytes: 255,
  maxXattrValueBytes: 64 * KiB,
  maxXattrBytesPerEntry: 256 * KiB,
  /** One PAX extended header or GNU long name (Go's archive/tar allows 1 MiB as well). */
  maxPaxHeaderBytes: 1 * MiB,
  /** One PAX record: a 64 KiB xattr value, base64'd by libarchive, plus its key. */
  maxPaxRecordBytes: 96 * KiB,
  /**
   * Decompression bombs: the uncompressed stream may exceed `maxCompressionRatio` times the compressed bytes
   * consumed only below `ratioFloorBytes`. Real layers compress 2–10x; a sparse multi-GiB file of zeros
   * (deflate's limit is 1032x) is what this refuses.
   */
  maxCompressionRatio: 256,
  ratioFloorBytes: 1024 * MiB,
  /**
   * A chunk's compressed span may be at most spanFactor × (skip + size) + spanSlackBytes: gzip and zstd expand
   * incompressible data by < 0.1% (5 bytes per 64 KiB stored block, 3 per 128 KiB zstd block) plus member
   * and frame headers; the slack covers the builders' read-ahead (16 KiB) and, for eStargz, the tar headers
   * of entries without payload that share the chunk's gzip member (~100 compressed bytes each) and the rest
   * of a member packing several small files.
   */
  spanFactor: 2,
  spanSlackBytes: 8 * MiB,
  /** eStargz packs small files into one member; a chunk starts at most this far into its member. */
  maxMemberSkipBytes: 64 * MiB,
  /** Free-form strings in the header (media type, build facts). */
  maxLabelBytes: 512,
} as const;

/** UTF-8 length of `s`, without allocating. */
export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
