// Builds a synthetic identity-codec LayerIndex (chunk bytes = blob[compressedStart+skip, +size)) from a list of
// file specs, plus the blob and a fetch function standing in for fetchChunkFromOrigin.
import { sha256 } from '../../src/image/digest.js';
import {
  LAYER_INDEX_VERSION,
  type Entry,
  type EntryType,
  type LayerIndex,
  type Chunk,
} from '../../src/image/layer-index.js';
import type { BlobReader } from '../../src/image/blob-reader.js';
import { parentPath } from '../../src/image/paths.js';
import { LayerReader } from '../../src/layer/layer-reader.js';

export interface SpecFile {
  path: string;
  type?: EntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  content?: Buffer | string;
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  /** Raw values; base64-encoded into the entry. */
  xattrs?: Record<string, Buffer | string>;
  opaque?: boolean;
  mtimeMs?: number;
}

export interface IdentityLayer {
  index: LayerIndex;
  blob: Buffer;
}

const HEADER_BYTES = 512;

/** Lays files out tar-like (a 512-byte gap before each, data padded to 512), chunked every `chunkSizeBytes`. */
export function buildIdentityLayer(
  specs: SpecFile[],
  options: { chunkSizeBytes?: number } = {},
): IdentityLayer {
  const chunkSize = options.chunkSizeBytes ?? 64 * 1024;
  const entries = new Map<string, Entry>();
  const parts: Buffer[] = [];
  let pos = 0;
  const addDir = (path: string): void => {
    if (entries.has(path)) return;
    if (path !== '') addDir(parentPath(path));
    entries.set(path, {
      path,
      type: 'dir',
      mode: 0o755,
      uid: 0,
      gid: 0,
      size: 0,
      mtimeMs: 1_700_000_000_000,
    });
  };
  addDir('');
  for (const s of specs) {
    if (s.path !== '') addDir(parentPath(s.path));
    const type = s.type ?? (s.content !== undefined ? 'file' : 'dir');
    const content = typeof s.content === 'string' ? Buffer.from(s.content) : (s.content ?? Buffer.alloc(0));
    pos += HEADER_BYTES;
    parts.push(Buffer.alloc(HEADER_BYTES, 0x55));
    const xattrs: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.xattrs ?? {})) xattrs[k] = Buffer.from(v).toString('base64');
    const e: Entry = {
      path: s.path,
      type,
      mode: s.mode ?? (type === 'dir' ? 0o755 : 0o644),
      uid: s.uid ?? 0,
      gid: s.gid ?? 0,
      size: type === 'file' ? content.length : 0,
      mtimeMs: s.mtimeMs ?? 1_700_000_000_000,
      ...(s.linkTarget !== undefined ? { linkTarget: s.linkTarget } : {}),
      ...(s.devMajor !== undefined ? { devMajor: s.devMajor } : {}),
      ...(s.devMinor !== undefined ? { devMinor: s.devMinor } : {}),
      ...(Object.keys(xattrs).length > 0 ? { xattrs } : {}),
      ...(s.opaque ? { opaque: true } : {}),
      ...(type === 'file' ? { dataOffset: pos, digest: sha256(content) } : {}),
    };
    entries.set(s.path, e);
    if (type === 'file') {
      parts.push(content);
      pos += content.length;
      const pad = (HEADER_BYTES - (content.length % HEADER_BYTES)) % HEADER_BYTES;
      parts.push(Buffer.alloc(pad));
      pos += pad;
    }
  }
  parts.push(Buffer.alloc(HEADER_BYTES * 2));
  const blob = Buffer.concat(parts);
  const chunks: Chunk[] = [];
  for (let off = 0; off < blob.length; off += chunkSize) {
    const size = Math.min(chunkSize, blob.length - off);
    chunks.push({
      digest: sha256(blob.subarray(off, off + size)),
      offset: off,
      size,
      compressedStart: off,
      compressedEnd: off + size,
      checkpoint: -1,
      skip: 0,
    });
  }
  const index: LayerIndex = {
    version: LAYER_INDEX_VERSION,
    layerDigest: sha256(blob),
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    format: 'tar',
    codec: 'identity',
    compressedSize: blob.length,
    uncompressedSize: blob.length,
    entries: [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    chunks,
    checkpoints: [],
    windows: [],
    build: { tool: 'test identity-layer', createdAt: new Date(0).toISOString(), durationMs: 0 },
  };
  return { index, blob };
}

/** The identity codec's origin fetch: the chunk's span of the blob, as fetchChunkFromOrigin would return it. */
export async function identityFetch(
  index: LayerIndex,
  chunkIndex: number,
  blob: BlobReader,
  signal?: AbortSignal,
): Promise<Buffer> {
  const c = index.chunks[chunkIndex];
  if (c === undefined) throw new RangeError(`no chunk ${chunkIndex}`);
  const start = c.compressedStart + c.skip;
  return blob.readRange(start, start + c.size, signal);
}

/** A LayerReader over an identity layer's blob held in memory: every chunk is its own span of the blob. */
export function identityReader(index: LayerIndex, blob: Buffer): LayerReader {
  return new LayerReader({
    index,
    source: {
      fetch: (q) => {
        const c = q.index.chunks[q.chunk]!;
        return Promise.resolve(blob.subarray(c.offset, c.offset + c.size));
      },
    },
  });
}
