// Test helper: rewrites a tar stream as a zstd:chunked blob in containers/storage's layout (pkg/chunked
// compressor): tar headers in shared frames, every file chunk its own frame, then the TOC, a tar-split and a
// 64-byte footer in skippable frames, plus the layer annotations. Decompressed whole, the blob is the tar.
import { createHash } from 'node:crypto';
import { TarParser, type TarEntry } from '../../src/image/tar.js';
import { compressZstdFrame } from '../../src/codec/zstd-binding.js';

export const CHECKSUM_KEY = 'io.github.containers.zstd-chunked.manifest-checksum';
export const POSITION_KEY = 'io.github.containers.zstd-chunked.manifest-position';
export const TARSPLIT_KEY = 'io.github.containers.zstd-chunked.tarsplit-position';
const FOOTER_MAGIC = Buffer.from([0x47, 0x4e, 0x55, 0x6c, 0x49, 0x6e, 0x55, 0x78]);

export interface ZstdChunkedWriterOptions {
  /** Split files into chunks of this many bytes (fixed size instead of c/storage's rolling checksum). */
  chunkSizeBytes?: number;
  /** Omit chunk entries and chunkDigest: each file is one frame verified by its digest (older writers). */
  noChunks?: boolean;
  level?: number;
}

export interface ZstdChunkedBlob {
  blob: Buffer;
  annotations: Record<string, string>;
  tocJson: Buffer;
  /** Offset of the compressed TOC (after its skippable frame header). */
  tocOffset: number;
}

interface TocEntry {
  type: string;
  name: string;
  linkName?: string;
  mode?: number;
  size?: number;
  uid?: number;
  gid?: number;
  modtime?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Record<string, string>;
  digest?: string;
  offset?: number;
  endOffset?: number;
  chunkSize?: number;
  chunkOffset?: number;
  chunkDigest?: string;
}

const TOC_TYPES: Record<TarEntry['type'], string> = {
  file: 'reg',
  dir: 'dir',
  symlink: 'symlink',
  hardlink: 'hardlink',
  char: 'char',
  block: 'block',
  fifo: 'fifo',
};

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function skippable(data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(0x184d2a50, 0);
  h.writeUInt32LE(data.length, 4);
  return Buffer.concat([h, data]);
}

export function writeZstdChunked(tar: Buffer, opts: ZstdChunkedWriterOptions = {}): ZstdChunkedBlob {
  const level = opts.level ?? 3;
  const entries: TarEntry[] = [];
  const parser = new TarParser({ onEntry: (e) => entries.push(e) });
  parser.push(tar);
  parser.end();

  const parts: Buffer[] = [];
  let written = 0;
  const emit = (raw: Buffer): number => {
    const start = written;
    const frame = compressZstdFrame(raw, level);
    parts.push(frame);
    written += frame.length;
    return start;
  };
  const toc: TocEntry[] = [];
  let cursor = 0;
  for (const e of entries) {
    const meta: TocEntry = { type: TOC_TYPES[e.type], name: e.name === '' ? './' : e.name };
    if (e.linkName !== '' && (e.type === 'symlink' || e.type === 'hardlink')) meta.linkName = e.linkName;
    if (e.mode !== 0) meta.mode = e.mode;
    if (e.uid !== 0) meta.uid = e.uid;
    if (e.gid !== 0) meta.gid = e.gid;
    if (e.mtimeMs !== 0) meta.modtime = new Date(e.mtimeMs).toISOString();
    if (e.type === 'char' || e.type === 'block')
      Object.assign(meta, { devMajor: e.devMajor, devMinor: e.devMinor });
    if (Object.keys(e.xattrs).length > 0) meta.xattrs = { ...e.xattrs };
    if (e.type !== 'file' || e.size === 0) {
      // Its header bytes join the frame that the next payload closes.
      toc.push(meta);
      continue;
    }
    meta.size = e.size;
    // The header (and the previous entry's padding) closes the current frame; the payload starts a new one.
    emit(tar.subarray(cursor, e.dataOffset));
    const data = tar.subarray(e.dataOffset, e.dataOffset + e.size);
    meta.digest = sha(data);
    const step = opts.noChunks === true ? data.length : (opts.chunkSizeBytes ?? data.length);
    const chunks: TocEntry[] = [];
    for (let o = 0; o < data.length; o += step) {
      const piece = data.subarray(o, Math.min(data.length, o + step));
      const offset = emit(piece);
      chunks.push({
        type: 'chunk',
        name: meta.name,
        chunkOffset: o,
        chunkSize: piece.length,
        offset,
        chunkDigest: sha(piece),
      });
    }
    meta.offset = chunks[0]!.offset!;
    meta.endOffset = written;
    if (chunks.length > 1) {
      Object.assign(meta, { chunkSize: chunks[0]!.chunkSize, chunkDigest: chunks[0]!.chunkDigest });
      toc.push(meta, ...chunks.slice(1));
    } else {
      toc.push(meta);
    }
    cursor = e.dataOffset + e.size;
  }
  emit(tar.subarray(cursor));

  const tocJson = Buffer.from(JSON.stringify({ version: 1, entries: toc }));
  const tocCompressed = compressZstdFrame(tocJson, level);
  const tocOffset = written + 8;
  parts.push(skippable(tocCompressed));
  written += 8 + tocCompressed.length;
  const tarSplit = compressZstdFrame(Buffer.from('{}\n'), level);
  const tarSplitOffset = written + 8;
  parts.push(skippable(tarSplit));
  written += 8 + tarSplit.length;
  const footer = Buffer.alloc(64);
  footer.writeBigUInt64LE(BigInt(tocOffset), 0);
  footer.writeBigUInt64LE(BigInt(tocCompressed.length), 8);
  footer.writeBigUInt64LE(BigInt(tocJson.length), 16);
  footer.writeBigUInt64LE(1n, 24);
  footer.writeBigUInt64LE(BigInt(tarSplitOffset), 32);
  footer.writeBigUInt64LE(BigInt(tarSplit.length), 40);
  footer.writeBigUInt64LE(3n, 48);
  FOOTER_MAGIC.copy(footer, 56);
  parts.push(skippable(footer));
  return {
    blob: Buffer.concat(parts),
    tocJson,
    tocOffset,
    annotations: {
      [CHECKSUM_KEY]: sha(tocCompressed),
      [POSITION_KEY]: `${tocOffset}:${tocCompressed.length}:${tocJson.length}:1`,
      [TARSPLIT_KEY]: `${tarSplitOffset}:${tarSplit.length}:3`,
    },
  };
}
