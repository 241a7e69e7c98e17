// Chunk decoding for the 'zstd-frame' codec: the span starts at a zstd frame; decode frames in order until
// skip + size bytes came out. Never returns a partial result.
import { FormatError } from '../errors.js';
import { createZstdDecoder } from './zstd-binding.js';
import { isZstdMagic } from './zstd-frames.js';

/** Sizes come from an index or a TOC: refuse absurd ones before allocating (chunks are at most 64 MiB). */
const MAX_OUTPUT_BYTES = 512 * 1024 * 1024;

function checkSize(n: number, what: string, label: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_OUTPUT_BYTES) {
    throw new FormatError(`${label}: ${what} of ${n} bytes is out of range`);
  }
}

/**
 * Decodes `compressed` (starting at a zstd frame) and returns exactly `size` bytes after skipping `skip`.
 * Corrupt, truncated or too-short input is a FormatError naming `label`. The span may end mid-frame once
 * the needed bytes are out (builders cut spans where the output was complete).
 */
export function decodeZstdSpan(compressed: Uint8Array, skip: number, size: number, label: string): Buffer {
  checkSize(size, 'zstd chunk', label);
  if (!Number.isSafeInteger(skip) || skip < 0) throw new FormatError(`${label}: bad zstd skip ${skip}`);
  const need = skip + size;
  const out = Buffer.allocUnsafe(size);
  if (size === 0) return out;
  if (!isZstdMagic(compressed)) {
    throw new FormatError(`${label}: span does not start with a zstd frame`);
  }
  let produced = 0;
  createZstdDecoder(label).decode(compressed, (piece) => {
    const start = produced;
    produced += piece.length;
    const from = Math.max(skip, start);
    const to = Math.min(need, produced);
    if (to > from) piece.copy(out, from - skip, from - start, to - start);
    return produced >= need;
  });
  if (produced < need) {
    throw new FormatError(`${label}: zstd span ended after ${produced} of ${need} bytes`);
  }
  return out;
}

/**
 * Decodes one whole zstd frame of known decoded length (a TOC): more or fewer bytes than `expectedBytes`, or
 * data after the frame, is a FormatError.
 */
export function decodeZstdExact(compressed: Uint8Array, expectedBytes: number, label: string): Buffer {
  if (!isZstdMagic(compressed)) throw new FormatError(`${label}: not a zstd frame`);
  checkSize(expectedBytes, 'zstd frame', label);
  const out = Buffer.allocUnsafe(expectedBytes);
  let produced = 0;
  const dec = createZstdDecoder(label);
  const consumed = dec.decode(compressed, (piece) => {
    if (produced + piece.length > expectedBytes) {
      produced += piece.length;
      return true;
    }
    piece.copy(out, produced);
    produced += piece.length;
    return false;
  });
  if (produced !== expectedBytes || !dec.atFrameEnd || consumed !== compressed.length) {
    throw new FormatError(
      `${label}: zstd frame of ${compressed.length} bytes decoded to ${produced} bytes` +
        `${dec.atFrameEnd ? '' : ' (truncated)'}, expected ${expectedBytes}`,
    );
  }
  return out;
}
