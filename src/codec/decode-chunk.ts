// Random-access chunk decoding: turns a chunk's compressed span into exactly its bytes (identity, zran
// restart from a checkpoint, gunzip from a gzip member start, zstd frames). Never returns a partial result.
import type { LayerIndex } from '../image/layer-index.js';
import { FormatError } from '../errors.js';
import { chunkJob, type ChunkJob, type InflateStart } from './chunk-job.js';
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
import { inflateWithZlib } from './zlib-inflate.js';
import { decodeZstdSpan } from './zstd-decode.js';

const GZIP_TRAILER_BYTES = 8;

/**
 * Decodes chunk `chunkIndex` of `index` from `compressed`, the blob bytes [compressedStart, compressedEnd).
 * Returns exactly `chunk.size` bytes; corrupt or truncated input is a FormatError.
 */
export function decodeChunk(index: LayerIndex, chunkIndex: number, compressed: Uint8Array): Buffer {
  return decodeJob(chunkJob(index, chunkIndex), compressed);
}

/**
 * 'auto' takes Node's zlib (native, several times faster) where it can start — at a gzip member or a
 * byte-aligned checkpoint — and pako otherwise, or whenever zlib cannot deliver all bytes (crossing into
 * another member from raw deflate, corrupt data), so results and errors are always pako's.
 */
export type DecodeEngine = 'auto' | 'pako';

const MAX_DEFLATE_RATIO = 1032;

/** Decodes one chunk from its plain job description (see chunkJob); the result may view `compressed`. */
export function decodeJob(job: ChunkJob, compressed: Uint8Array, engine: DecodeEngine = 'auto'): Buffer {
  const need = job.skip + job.size;
  if (job.codec === 'identity') {
    if (compressed.length < need) {
      throw new FormatError(`${job.label}: span has ${compressed.length} bytes, need ${need}`);
    }
    return Buffer.from(compressed.buffer, compressed.byteOffset + job.skip, job.size);
  }
  if (job.codec === 'zstd-frame') return decodeZstdSpan(compressed, job.skip, job.size, job.label);
  // Deflate expands at most 1032:1, so an index claiming more output than its span can hold is corrupt or
  // hostile, and must not size an allocation (found by test/fuzz/codec.test.ts: a 2^31 skip allocated 2 GiB).
  if (need > compressed.length * MAX_DEFLATE_RATIO) {
    throw new FormatError(
      `${job.label}: ${need} bytes cannot come out of a ${compressed.length}-byte deflate span`,
    );
  }
  if (engine === 'auto' && need > 0) {
    const fast = inflateWithZlib(compressed, job.start, need);
    if (fast !== undefined) return fast.subarray(job.skip, need);
  }
  return inflateSpan(compressed, 0, job.start, need, job.skip, job.label);
}

/** Inflates from `input[pos]` until `need` bytes came out, crossing gzip members; returns the last need−skip. */
export function inflateSpan(
  input: Uint8Array,
  pos: number,
  start: InflateStart,
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
