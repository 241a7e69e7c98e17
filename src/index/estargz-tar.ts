// Reads the one tar entry of an eStargz TOC member: `stargz.index.json`, possibly behind PAX/GNU long-name headers.
// Deliberately tiny: the TOC member holds a single regular file, so a full tar reader is not needed here.
import { FormatError } from '../errors.js';
import { TOC_TAR_NAME } from '../image/estargz-toc.js';

const BLOCK = 512;

function cString(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.toString('utf8', 0, nul < 0 ? len : nul);
}

/** A ustar numeric field: octal ASCII, or base-256 when the high bit of the first byte is set. */
function tarNumber(b: Buffer, start: number, len: number): number | undefined {
  const field = b.subarray(start, start + len);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let n = (field[0] ?? 0) & 0x7f;
    for (let i = 1; i < field.length; i++) {
      n = n * 256 + (field[i] ?? 0);
      if (n > Number.MAX_SAFE_INTEGER) return undefined;
    }
    return n;
  }
  const s = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  return Number.parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const want = tarNumber(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
  return want === sum;
}

function paxPath(data: Buffer): string | undefined {
  let pos = 0;
  let path: string | undefined;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number.parseInt(data.toString('latin1', pos, sp), 10);
    if (!Number.isSafeInteger(len) || len <= sp - pos || pos + len > data.length) break;
    const rec = data.toString('utf8', sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0 && rec.slice(0, eq) === 'path') path = rec.slice(eq + 1);
    pos += len;
  }
  return path;
}

/**
 * The content of `stargz.index.json` from the decompressed TOC member (tar header, JSON, end-of-archive).
 * The first regular entry must be the TOC, as stargz's reader requires.
 */
export function extractTocJson(tar: Buffer, what: string): Buffer {
  let pos = 0;
  let longName: string | undefined;
  while (pos + BLOCK <= tar.length) {
    const h = tar.subarray(pos, pos + BLOCK);
    if (h.every((x) => x === 0)) break;
    if (!checksumOk(h)) throw new FormatError(`${what}: eStargz TOC member has a bad tar header checksum`);
    const size = tarNumber(h, 124, 12);
    if (size === undefined) throw new FormatError(`${what}: eStargz TOC tar header has a bad size field`);
    const dataStart = pos + BLOCK;
    if (dataStart + size > tar.length) {
      throw new FormatError(`${what}: eStargz TOC tar entry of ${size} bytes is truncated`);
    }
    const data = tar.subarray(dataStart, dataStart + size);
    const type = String.fromCharCode(h[156] ?? 0);
    pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      longName = paxPath(data) ?? longName;
      continue;
    }
    if (type === 'L') {
      longName = cString(data, 0, data.length);
      continue;
    }
    if (type === 'g') continue;
    const prefix = h.toString('latin1', 257, 262) === 'ustar' ? cString(h, 345, 155) : '';
    const short = cString(h, 0, 100);
    const name = longName ?? (prefix ? `${prefix}/${short}` : short);
    if ((type !== '0' && type !== '\0') || name.replace(/^(\.?\/)+/, '') !== TOC_TAR_NAME) {
      throw new FormatError(`${what}: eStargz TOC tar entry is ${JSON.stringify(name)}, not ${TOC_TAR_NAME}`);
    }
    return data;
  }
  throw new FormatError(`${what}: eStargz TOC member holds no ${TOC_TAR_NAME} entry`);
}
