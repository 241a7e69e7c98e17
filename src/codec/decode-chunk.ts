// Random-access chunk decoding: turns a chunk's compressed span into exactly its bytes (identity, zran
// restart from a checkpoint, or gunzip from a gzip member start). Never returns a partial result.
import type { LayerIndex } from '../image/layer-index.js';
import { FormatError, InvalidArgumentError } from '../errors.js';
import {
  GZIP_WINDOW_BITS,
  RAW_WINDOW_BITS,
  Z_BUF_ERROR,
  Z_NO_FLUSH,
  Z_OK,
  Z_STREAM_END,
  inflate,
  inflateEnd,
  inflateInit2,
  inflatePrime,
  inflateReset2,
  inflateSetDictionary,
  newZStream,
} from './pako-zlib.js';

const GZIP_TRAILER_BYTES = 8;

/**
 * Decodes chunk `chunkIndex` of `index` from `compressed`, the blob bytes [compressedStart, compressedEnd).
 * Returns exactly `chunk.size` bytes; corrupt or truncated input is a FormatError.
 */
export function decodeChunk(index: LayerIndex, chunkIndex: number, compressed: Uint8Array): Buffer {
  const chunk = index.chunks[chunkIndex];
  if (chunk === undefined) {
    throw new InvalidArgumentError(
      `layer ${index.layerDigest}: no chunk ${chunkIndex} (has ${index.chunks.length})`,
    );
  }
  const where = `layer ${index.layerDigest} chunk ${chunkIndex}`;
  const need = chunk.skip + chunk.size;
  if (index.codec === 'identity') {
    if (compressed.length < need) {
      throw new FormatError(`${where}: span has ${compressed.length} bytes, need ${need}`);
    }
    return Buffer.from(compressed.buffer, compressed.byteOffset + chunk.skip, chunk.size);
  }
  if (index.codec === 'gzip-member') {
    return inflateSpan(compressed, 0, { gzip: true, bits: 0, window: undefined }, need, chunk.skip, where);
  }
  const cp = index.checkpoints[chunk.checkpoint];
  if (cp === undefined) throw new FormatError(`${where}: checkpoint ${chunk.checkpoint} missing from index`);
  const window = index.windows[cp.window];
  if (!cp.memberStart && window === undefined) throw new FormatError(`${where}: window ${cp.window} missing`);
  const spanStart = cp.memberStart || cp.bits === 0 ? cp.compressedOffset : cp.compressedOffset - 1;
  if (spanStart !== chunk.compressedStart) {
    throw new FormatError(`${where}: span starts at ${chunk.compressedStart}, checkpoint at ${spanStart}`);
  }
  return inflateSpan(compressed, 0, { gzip: cp.memberStart, bits: cp.bits, window }, need, chunk.skip, where);
}

interface Start {
  /** Start in gzip framing (at a member header) rather than raw deflate. */
  gzip: boolean;
  bits: number;
  window: Uint8Array | undefined;
}

/** Inflates from `input[pos]` until `need` bytes came out, crossing gzip members; returns the last need−skip. */
export function inflateSpan(
  input: Uint8Array,
  pos: number,
  start: Start,
  need: number,
  skip: number,
  where: string,
): Buffer {
  const out = Buffer.allocUnsafe(need);
  if (need === 0) return out.subarray(0, 0);
  const strm = newZStream();
  let gzip = start.gzip;
  if (inflateInit2(strm, gzip ? GZIP_WINDOW_BITS : RAW_WINDOW_BITS) !== Z_OK) {
    throw new FormatError(`${where}: inflateInit2 failed`);
  }
  try {
    if (start.bits > 0) {
      const first = input[pos];
      if (first === undefined) throw new FormatError(`${where}: empty compressed span`);
      inflatePrime(strm, start.bits, first >> (8 - start.bits));
      pos++;
    }
    if (!gzip && start.window !== undefined && start.window.length > 0) {
      if (inflateSetDictionary(strm, start.window) !== Z_OK) throw new FormatError(`${where}: bad window`);
    }
    strm.output = out;
    strm.next_out = 0;
    strm.avail_out = need;
    strm.input = input;
    strm.next_in = pos;
    strm.avail_in = input.length - pos;
    for (;;) {
      const ret = inflate(strm, Z_NO_FLUSH);
      if (strm.next_out >= need) return out.subarray(skip, need);
      if (ret === Z_STREAM_END) {
        // The member ended early: skip a raw stream's gzip trailer, then go on with the next member.
        const next = strm.next_in + (gzip ? 0 : GZIP_TRAILER_BYTES);
        if (next + 1 >= input.length || input[next] !== 0x1f || input[next + 1] !== 0x8b) {
          throw new FormatError(`${where}: stream ended after ${strm.next_out} of ${need} bytes`);
        }
        gzip = true;
        const produced = strm.next_out;
        if (inflateReset2(strm, GZIP_WINDOW_BITS) !== Z_OK)
          throw new FormatError(`${where}: inflateReset2 failed`);
        strm.output = out;
        strm.next_out = produced;
        strm.avail_out = need - produced;
        strm.input = input;
        strm.next_in = next;
        strm.avail_in = input.length - next;
        continue;
      }
      if (ret === Z_BUF_ERROR || (ret === Z_OK && strm.avail_in === 0)) {
        throw new FormatError(`${where}: compressed span truncated after ${strm.next_out} of ${need} bytes`);
      }
      if (ret !== Z_OK) {
        throw new FormatError(`${where}: corrupt deflate data (${strm.msg || `zlib error ${ret}`})`);
      }
    }
  } finally {
    inflateEnd(strm);
  }
}
