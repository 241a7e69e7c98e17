// The one home of pako: typed access to its low-level zlib inflate port, which (unlike node:zlib) exposes
// block boundaries (Z_BLOCK, data_type) and the bit buffer needed to resume at a zran checkpoint.
import { createRequire } from 'node:module';

/** The parts of pako's internal inflate state we touch (zlib's `struct inflate_state`). */
export interface InflateState {
  hold: number;
  bits: number;
}

export interface ZStream {
  input: Uint8Array | null;
  next_in: number;
  avail_in: number;
  total_in: number;
  output: Uint8Array | null;
  next_out: number;
  avail_out: number;
  total_out: number;
  msg: string;
  state: InflateState | null;
  data_type: number;
}

interface InflateModule {
  inflateInit2: (strm: ZStream, windowBits: number) => number;
  inflateReset2: (strm: ZStream, windowBits: number) => number;
  inflate: (strm: ZStream, flush: number) => number;
  inflateSetDictionary: (strm: ZStream, dictionary: Uint8Array) => number;
  inflateEnd: (strm: ZStream) => number;
}

const require = createRequire(import.meta.url);
const inflateModule = require('pako/lib/zlib/inflate.js') as InflateModule;
const ZStreamCtor = require('pako/lib/zlib/zstream.js') as new () => ZStream;

export const Z_NO_FLUSH = 0;
export const Z_BLOCK = 5;
export const Z_OK = 0;
export const Z_STREAM_END = 1;
export const Z_NEED_DICT = 2;
export const Z_BUF_ERROR = -5;

/** windowBits for raw deflate and for gzip-only framing. */
export const RAW_WINDOW_BITS = -15;
export const GZIP_WINDOW_BITS = 31;

export const inflateInit2 = inflateModule.inflateInit2;
export const inflateReset2 = inflateModule.inflateReset2;
export const inflate = inflateModule.inflate;
export const inflateSetDictionary = inflateModule.inflateSetDictionary;
export const inflateEnd = inflateModule.inflateEnd;

export function newZStream(): ZStream {
  return new ZStreamCtor();
}

/** zlib's inflatePrime (not exported by pako): push `bits` low bits of `value` into the bit buffer. */
export function inflatePrime(strm: ZStream, bits: number, value: number): void {
  const state = strm.state;
  if (state === null || bits === 0) return;
  state.hold += (value & ((1 << bits) - 1)) << state.bits;
  state.bits += bits;
}
