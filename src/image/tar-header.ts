// Decoding of one 512-byte tar header block: numeric fields (octal and base-256), strings and checksum.
import { FormatError } from '../errors.js';

export const BLOCK = 512;

export const Field = {
  Name: 0,
  Mode: 100,
  Uid: 108,
  Gid: 116,
  Size: 124,
  Mtime: 136,
  Checksum: 148,
  Type: 156,
  LinkName: 157,
  Magic: 257,
  DevMajor: 329,
  DevMinor: 337,
  Prefix: 345,
} as const;

const decoder = new TextDecoder('utf-8');

/** A NUL-terminated string field. */
export function readString(block: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && block[end] !== 0) end++;
  return decoder.decode(block.subarray(off, end));
}

/**
 * A numeric field: octal ASCII (leading spaces, NUL/space terminated) or GNU base-256 (high bit of the first
 * byte set, big-endian two's complement). Values beyond 2^53 are a FormatError; negatives are returned.
 */
export function readNumber(block: Uint8Array, off: number, len: number, what: string): number {
  const first = block[off] ?? 0;
  if (first & 0x80) {
    if (first & 0x40) return twosComplement(block, off, len, what);
    let v = 0;
    for (let i = 0; i < len; i++) {
      v = v * 256 + ((block[off + i] ?? 0) & (i === 0 ? 0x7f : 0xff));
      if (!Number.isSafeInteger(v)) throw new FormatError(`tar ${what} field does not fit in 2^53`);
    }
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) {
    if (block[i] === 0) return 0;
    i++;
  }
  let v = 0;
  for (; i < end; i++) {
    const c = block[i] ?? 0;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new FormatError(`tar ${what} field is not octal`);
    v = v * 8 + (c - 0x30);
  }
  if (!Number.isSafeInteger(v)) throw new FormatError(`tar ${what} field does not fit in 2^53`);
  return v;
}

function twosComplement(block: Uint8Array, off: number, len: number, what: string): number {
  // value = -(~bytes + 1), computed on the inverted magnitude to stay within safe integers.
  let mag = 0;
  for (let i = 0; i < len; i++) {
    mag = mag * 256 + (~(block[off + i] ?? 0) & 0xff);
    if (!Number.isSafeInteger(mag)) throw new FormatError(`tar ${what} field does not fit in 2^53`);
  }
  return -(mag + 1);
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** Verifies the header checksum (unsigned, or the historic signed sum), chksum field counted as spaces. */
export function checksumMatches(block: Uint8Array): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= Field.Checksum && i < Field.Checksum + 8 ? 0x20 : (block[i] ?? 0);
    unsigned += b;
    signed += b >= 128 ? b - 256 : b;
  }
  let stored: number;
  try {
    stored = readNumber(block, Field.Checksum, 8, 'checksum');
  } catch {
    return false;
  }
  return stored === unsigned || stored === signed;
}

/** The POSIX ustar magic ("ustar\0"), the only form whose prefix field extends the name. */
export function isPosixUstar(block: Uint8Array): boolean {
  return (
    block[257] === 0x75 &&
    block[258] === 0x73 &&
    block[259] === 0x74 &&
    block[260] === 0x61 &&
    block[261] === 0x72 &&
    block[262] === 0
  );
}
