// Lets byte-oriented inflaters (Node's zlib, which has no inflatePrime) start at a zran checkpoint with bits ≠ 0:
// prepends empty deflate blocks whose total length puts the checkpoint's first block on the right bit.

/** Deflate's order for the code-length code lengths in a dynamic block header (RFC 1951 §3.2.7). */
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

class BitWriter {
  readonly bytes: number[] = [];
  bitLength = 0;

  /** Appends the `n` low bits of `value`, least significant first (deflate's bit order for fields). */
  put(value: number, n: number): void {
    for (let i = 0; i < n; i++) {
      const byte = this.bitLength >> 3;
      if (byte === this.bytes.length) this.bytes.push(0);
      this.bytes[byte]! |= ((value >> i) & 1) << (this.bitLength & 7);
      this.bitLength++;
    }
  }
}

/** A non-final fixed-Huffman block holding only end-of-block: 10 bits. */
function emptyFixedBlock(w: BitWriter): void {
  w.put(0, 1); // BFINAL
  w.put(1, 2); // BTYPE 01
  w.put(0, 7); // code 256 (end of block) is 0000000
}

/**
 * A non-final dynamic-Huffman block holding only end-of-block: 93 bits. Its lit/len code has the single
 * length-1 symbol 256 and its distance code a single length-1 symbol, the incomplete codes zlib accepts.
 */
function emptyDynamicBlock(w: BitWriter): void {
  w.put(0, 1); // BFINAL
  w.put(2, 2); // BTYPE 10
  w.put(0, 5); // HLIT: 257 lit/len lengths
  w.put(0, 5); // HDIST: 1 distance length
  w.put(15, 4); // HCLEN: all 19 code-length code lengths (3 bits more than the 18 needed: odd total)
  for (const sym of CL_ORDER) w.put(sym === 18 || sym === 1 ? 1 : 0, 3);
  // Canonical codes: symbol 1 → 0, symbol 18 → 1. Lengths: 256 zeros, then 1 (symbol 256), then 1 (dist 0).
  w.put(1, 1);
  w.put(138 - 11, 7);
  w.put(1, 1);
  w.put(118 - 11, 7);
  w.put(0, 1);
  w.put(0, 1);
  w.put(0, 1); // end of block: symbol 256, code 0
}

/**
 * `span` (whose first byte holds `bits` 1–7 bits of the first block in its high bits) rewritten as a raw deflate
 * stream that starts byte-aligned: empty blocks fill the low 8 − bits bits of that byte (plus whole bytes).
 * They produce no output, so a dictionary set before them still is the history of the first real block.
 */
export function byteAlignedSpan(span: Uint8Array, bits: number): Uint8Array {
  const first = span[0];
  if (bits < 1 || bits > 7 || first === undefined) throw new RangeError(`bits must be 1–7, got ${bits}`);
  const fill = 8 - bits;
  const w = new BitWriter();
  // Fixed blocks add 2 (mod 8) each; the dynamic block 5: together they reach every residue 1–7.
  let fixed = fill % 2 === 0 ? fill / 2 : ((fill - 5 + 8) % 8) / 2;
  if (fill % 2 === 1) emptyDynamicBlock(w);
  for (; fixed > 0; fixed--) emptyFixedBlock(w);
  if ((w.bitLength & 7) !== fill)
    throw new Error(`bit-align prefix is ${w.bitLength} bits, want ${fill} mod 8`);
  const prefix = w.bytes.length;
  const out = new Uint8Array(prefix - 1 + span.length);
  out.set(w.bytes, 0);
  out[prefix - 1] = (w.bytes[prefix - 1]! & ((1 << fill) - 1)) | (first & (0xff << fill) & 0xff);
  out.set(span.subarray(1), prefix);
  return out;
}
