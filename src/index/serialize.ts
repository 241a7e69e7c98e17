// On-disk / on-wire form of a LayerIndex: magic, version, gzip'd JSON header, raw zran windows, and a
// SHA-256 trailer over everything before it. Any mismatch, truncation or broken rule (validate-index.ts) is a
// FormatError: a checksum proves only that the file is whole, not who made it.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { FormatError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { INDEX_LIMITS } from '../image/index-limits.js';
import { LAYER_INDEX_VERSION, type Checkpoint, type Chunk, type LayerIndex } from '../image/layer-index.js';
import { parseIndexJson, type IndexJson } from './serialize-schema.js';
import { validateIndex } from './validate-index.js';

const MAGIC = Buffer.from('FERRYIDX', 'latin1');
/** 1: windows inline; 2: windows in a separate blob (LayerIndex.windowsBlob), for indexes published to nodes. */
const FILE_VERSIONS = new Set([1, 2]);
const FIXED_BYTES = 16; // magic, version, header length
const TRAILER_BYTES = 32;
const MAX_HEADER_BYTES = INDEX_LIMITS.maxHeaderJsonBytes;

/** The JSON header of a serialized index (exported for tests that craft hostile but well-sealed files). */
export function indexToJson(index: LayerIndex): IndexJson {
  return {
    version: index.version,
    layerDigest: index.layerDigest,
    mediaType: index.mediaType,
    format: index.format,
    codec: index.codec,
    compressedSize: index.compressedSize,
    uncompressedSize: index.uncompressedSize,
    entries: index.entries,
    // Chunks and checkpoints as tuples: they are numerous and the keys would dominate.
    chunks: index.chunks.map((c) => [
      c.digest,
      c.offset,
      c.size,
      c.compressedStart,
      c.compressedEnd,
      c.checkpoint,
      c.skip,
    ]),
    checkpoints: index.checkpoints.map((c) => [
      c.compressedOffset,
      c.bits,
      c.uncompressedOffset,
      c.window,
      c.memberStart ? 1 : 0,
    ]),
    windowSizes: index.windows.map((w) => w.length),
    ...(index.windowsBlob !== undefined
      ? {
          windowsBlob: {
            digest: index.windowsBlob.digest,
            size: index.windowsBlob.size,
            refs: index.windowsBlob.refs.map((r) => [r.offset, r.length, r.digest, r.size]),
          },
        }
      : {}),
    build: index.build,
  };
}

export function serializeIndex(index: LayerIndex): Buffer {
  const json = indexToJson(index);
  const header = gzipSync(Buffer.from(JSON.stringify(json), 'utf8'));
  const fixed = Buffer.alloc(FIXED_BYTES);
  MAGIC.copy(fixed, 0);
  fixed.writeUInt32BE(index.windowsBlob !== undefined ? 2 : 1, 8);
  fixed.writeUInt32BE(header.length, 12);
  const body = Buffer.concat([fixed, header, ...index.windows]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

export function deserializeIndex(buf: Uint8Array, expectedLayerDigest?: Digest): LayerIndex {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const what = `layer index${expectedLayerDigest !== undefined ? ` for ${expectedLayerDigest}` : ''}`;
  if (b.length < FIXED_BYTES + TRAILER_BYTES || !b.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new FormatError(`${what}: not a Ferry layer index`);
  }
  const body = b.subarray(0, b.length - TRAILER_BYTES);
  if (
    !createHash('sha256')
      .update(body)
      .digest()
      .equals(b.subarray(b.length - TRAILER_BYTES))
  ) {
    throw new FormatError(`${what}: checksum mismatch (corrupt or truncated)`);
  }
  const version = b.readUInt32BE(8);
  if (!FILE_VERSIONS.has(version)) throw new FormatError(`${what}: unsupported file version ${version}`);
  const headerLen = b.readUInt32BE(12);
  if (headerLen > MAX_HEADER_BYTES || FIXED_BYTES + headerLen > body.length)
    throw new FormatError(`${what}: bad header length`);
  let parsed: unknown;
  try {
    // Bounded: a well-checksummed header can still be a gzip bomb (JSON compresses ~10x, a bomb ~1000x).
    const maxOutputLength = Math.min(
      MAX_HEADER_BYTES,
      Math.max(INDEX_LIMITS.minHeaderInflateBytes, headerLen * INDEX_LIMITS.maxHeaderInflateRatio),
    );
    const header = body.subarray(FIXED_BYTES, FIXED_BYTES + headerLen);
    parsed = JSON.parse(gunzipSync(header, { maxOutputLength }).toString('utf8'));
  } catch (e) {
    throw new FormatError(`${what}: unreadable header`, { cause: e });
  }
  const json = parseIndexJson(parsed, what);
  if (expectedLayerDigest !== undefined && json.layerDigest !== expectedLayerDigest) {
    throw new FormatError(`${what}: index is for ${json.layerDigest}`);
  }
  const windows: Uint8Array[] = [];
  let pos = FIXED_BYTES + headerLen;
  for (const size of json.windowSizes) {
    if (pos + size > body.length) throw new FormatError(`${what}: windows truncated`);
    windows.push(new Uint8Array(body.subarray(pos, pos + size)));
    pos += size;
  }
  if (pos !== body.length) throw new FormatError(`${what}: ${body.length - pos} unexpected trailing bytes`);
  const apart = json.windowsBlob;
  if ((apart !== undefined) !== (version === 2) || (apart !== undefined && windows.length > 0))
    throw new FormatError(`${what}: windows must be either inline (version 1) or apart (version 2)`);
  const windowCount = apart?.refs.length ?? windows.length;
  const checkpoints: Checkpoint[] = json.checkpoints.map(
    ([compressedOffset, bits, uncompressedOffset, window, ms]) => {
      if (window >= windowCount) throw new FormatError(`${what}: checkpoint names missing window ${window}`);
      return { compressedOffset, bits, uncompressedOffset, window, memberStart: ms === 1 };
    },
  );
  const chunks: Chunk[] = json.chunks.map(
    ([digest, offset, size, compressedStart, compressedEnd, checkpoint, skip]) => {
      if (checkpoint >= checkpoints.length)
        throw new FormatError(`${what}: chunk names missing checkpoint ${checkpoint}`);
      return { digest, offset, size, compressedStart, compressedEnd, checkpoint, skip };
    },
  );
  const index: LayerIndex = {
    version: LAYER_INDEX_VERSION,
    layerDigest: json.layerDigest,
    mediaType: json.mediaType,
    format: json.format,
    codec: json.codec,
    compressedSize: json.compressedSize,
    uncompressedSize: json.uncompressedSize,
    entries: json.entries,
    chunks,
    checkpoints,
    windows,
    ...(apart !== undefined
      ? {
          windowsBlob: {
            digest: apart.digest,
            size: apart.size,
            refs: apart.refs.map(([offset, length, digest, size]) => ({ offset, length, digest, size })),
          },
        }
      : {}),
    build: json.build,
  };
  validateIndex(index);
  return index;
}
