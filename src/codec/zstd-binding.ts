// The one home of the zstd binding (zstd-napi, libzstd compiled at install): a synchronous streaming decoder.
// Moving to node:zlib's zstd (Node ≥ 22.15) means rewriting only this file behind the same ZstdDecoder API.
import binding from 'zstd-napi/binding.js';
import { FormatError } from '../errors.js';

export const ZSTD_BACKEND = 'zstd-napi 0.0.13 (libzstd)';

/** Output buffer per native call: libzstd's recommended size (one full block, 128 KiB). */
const OUT_BYTES = binding.dStreamOutSize();

/**
 * Decodes a zstd byte stream (any number of frames; skippable frames are skipped) incrementally and
 * synchronously. Output pieces reach the sink in order; a piece is only valid during the sink call.
 */
export interface ZstdDecoder {
  /**
   * Decodes all of `input`, or stops early once `sink` returns true ("enough"). Returns how many input bytes
   * were consumed. Corrupt data is a FormatError naming `label`.
   */
  decode(input: Uint8Array, sink: (piece: Buffer) => boolean): number;
  /** True when every byte fed so far belongs to frames that have fully ended. */
  readonly atFrameEnd: boolean;
}

class NapiDecoder implements ZstdDecoder {
  private readonly dctx = new binding.DCtx();
  private readonly out = Buffer.allocUnsafe(OUT_BYTES);
  private ended = true;

  constructor(private readonly label: string) {}

  get atFrameEnd(): boolean {
    return this.ended;
  }

  decode(input: Uint8Array, sink: (piece: Buffer) => boolean): number {
    let pos = 0;
    for (;;) {
      let hint: number;
      let produced: number;
      let consumed: number;
      try {
        [hint, produced, consumed] = this.dctx.decompressStream(this.out, input.subarray(pos));
      } catch (e) {
        throw new FormatError(`${this.label}: corrupt zstd data: ${(e as Error).message}`, { cause: e });
      }
      pos += consumed;
      // hint 0 means a frame just ended and everything it holds has been flushed.
      if (consumed > 0 || produced > 0) this.ended = hint === 0;
      if (produced > 0 && sink(this.out.subarray(0, produced))) return pos;
      // A full output buffer may hide more pending output; otherwise stop when the input is used up.
      if (pos >= input.length && produced < this.out.length) return pos;
      if (consumed === 0 && produced === 0) return pos;
    }
  }
}

export function createZstdDecoder(label: string): ZstdDecoder {
  return new NapiDecoder(label);
}

/** One zstd frame holding `input`, for tests and tools (Ferry itself never compresses layers). */
export function compressZstdFrame(input: Uint8Array, level = 3): Buffer {
  const out = Buffer.allocUnsafe(binding.compressBound(input.length));
  const n = binding.compress(out, input, level);
  return out.subarray(0, n);
}

/** The libzstd version in use, e.g. "1.5.6". */
export function zstdVersion(): string {
  return binding.versionString();
}
