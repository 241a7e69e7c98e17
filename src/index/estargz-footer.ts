// The eStargz footer: an empty gzip member whose extra field holds the TOC's offset (`%016x` then `STARGZ`).
// Parses both the 51-byte eStargz footer and the 47-byte legacy (CRFS) one; never throws on garbage.

export const FOOTER_SIZE = 51;
export const LEGACY_FOOTER_SIZE = 47;

export interface EstargzFooter {
  readonly tocOffset: number;
  readonly footerSize: typeof FOOTER_SIZE | typeof LEGACY_FOOTER_SIZE;
}

const MAGIC = 'STARGZ';
const FEXTRA = 0x04;
// FHCRC, FNAME and FCOMMENT would push the member past its fixed size, so a footer never has them.
const FORBIDDEN_FLAGS = 0x02 | 0x08 | 0x10 | 0xe0;
const HEX16 = /^[0-9a-fA-F]{16}$/;

/** The `%016xSTARGZ` payload, or undefined. */
function parsePayload(p: Buffer, blobSize: number, footerSize: number): number | undefined {
  if (p.length !== 22 || p.toString('latin1', 16) !== MAGIC) return undefined;
  const hex = p.toString('latin1', 0, 16);
  if (!HEX16.test(hex)) return undefined;
  const off = Number.parseInt(hex, 16);
  // The TOC member needs at least a few bytes between its offset and the footer.
  if (!Number.isSafeInteger(off) || off >= blobSize - footerSize) return undefined;
  return off;
}

function gzipHeaderOk(b: Buffer): boolean {
  return (
    b[0] === 0x1f &&
    b[1] === 0x8b &&
    b[2] === 0x08 &&
    ((b[3] ?? 0) & FEXTRA) !== 0 &&
    ((b[3] ?? 0) & FORBIDDEN_FLAGS) === 0
  );
}

/**
 * Parses the last bytes of a blob (at least 51, or 47 for a legacy-only check) as an eStargz footer.
 * `tail` must end at the blob's end; `blobSize` bounds the TOC offset. Undefined when it is not a footer.
 */
export function parseEstargzFooter(tail: Buffer, blobSize: number): EstargzFooter | undefined {
  if (tail.length >= FOOTER_SIZE && blobSize >= FOOTER_SIZE) {
    const f = tail.subarray(tail.length - FOOTER_SIZE);
    if (
      gzipHeaderOk(f) &&
      f.readUInt16LE(10) === 26 &&
      f[12] === 0x53 &&
      f[13] === 0x47 &&
      f.readUInt16LE(14) === 22
    ) {
      const off = parsePayload(f.subarray(16, 38), blobSize, FOOTER_SIZE);
      if (off !== undefined) return { tocOffset: off, footerSize: FOOTER_SIZE };
    }
  }
  if (tail.length >= LEGACY_FOOTER_SIZE && blobSize >= LEGACY_FOOTER_SIZE) {
    const f = tail.subarray(tail.length - LEGACY_FOOTER_SIZE);
    if (gzipHeaderOk(f) && f.readUInt16LE(10) === 22) {
      const off = parsePayload(f.subarray(12, 34), blobSize, LEGACY_FOOTER_SIZE);
      if (off !== undefined) return { tocOffset: off, footerSize: LEGACY_FOOTER_SIZE };
    }
  }
  return undefined;
}

/** Encodes a footer exactly as stargz's Go writer does (gzip NoCompression, OS 255); tests and tools use it. */
export function encodeEstargzFooter(tocOffset: number, legacy = false): Buffer {
  const payload = Buffer.from(tocOffset.toString(16).padStart(16, '0') + MAGIC, 'latin1');
  const extra = legacy ? payload : Buffer.concat([Buffer.from([0x53, 0x47, 22, 0]), payload]);
  const head = Buffer.from([
    0x1f,
    0x8b,
    0x08,
    FEXTRA,
    0,
    0,
    0,
    0,
    0,
    0xff,
    extra.length & 0xff,
    extra.length >> 8,
  ]);
  // Final stored empty block, then CRC32 = 0 and ISIZE = 0 of the empty content.
  const tail = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([head, extra, tail]);
}
