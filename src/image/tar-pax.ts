// PAX extended headers: parsing "<len> <key>=<value>\n" records and applying path, linkpath, size, mtime,
// uid, gid and xattrs (SCHILY.xattr.* raw, LIBARCHIVE.xattr.* base64) to the entry that follows.
import { FormatError } from '../errors.js';

export type PaxRecords = Map<string, Buffer>;

const decoder = new TextDecoder('utf-8');

/** Parses a PAX header body; later records with the same key win. Malformed records are a FormatError. */
export function parsePax(body: Uint8Array, at: number): PaxRecords {
  const out: PaxRecords = new Map();
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // some writers pad the body with NULs
    let len = 0;
    let i = pos;
    while (i < body.length && body[i] !== 0x20) {
      const c = body[i]!;
      if (c < 0x30 || c > 0x39 || i - pos > 12)
        throw new FormatError(`bad PAX record length at offset ${at}`);
      len = len * 10 + (c - 0x30);
      i++;
    }
    if (i >= body.length || len <= i - pos + 1 || pos + len > body.length || body[pos + len - 1] !== 0x0a) {
      throw new FormatError(`malformed PAX record at offset ${at}`);
    }
    const record = body.subarray(i + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw new FormatError(`PAX record without key at offset ${at}`);
    out.set(decoder.decode(record.subarray(0, eq)), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

export interface PaxOverrides {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtimeMs?: number;
  xattrs: Record<string, string>;
}

/** Folds global then per-entry records into overrides for the next entry. */
export function applyPax(global: PaxRecords, local: PaxRecords, at: number): PaxOverrides {
  const o: PaxOverrides = { xattrs: {} };
  for (const records of [global, local]) {
    for (const [key, value] of records) {
      if (key === 'path') o.path = value.toString('utf8');
      else if (key === 'linkpath') o.linkpath = value.toString('utf8');
      else if (key === 'size') o.size = decimal(value, key, at);
      else if (key === 'uid') o.uid = decimal(value, key, at);
      else if (key === 'gid') o.gid = decimal(value, key, at);
      else if (key === 'mtime') o.mtimeMs = paxTimeMs(value.toString('latin1'), at);
      else if (key.startsWith('SCHILY.xattr.')) o.xattrs[key.slice(13)] = value.toString('base64');
      else if (key.startsWith('LIBARCHIVE.xattr.')) {
        const name = safeDecodeURIComponent(key.slice(17), at);
        o.xattrs[name] = Buffer.from(value.toString('latin1'), 'base64').toString('base64');
      }
    }
  }
  return o;
}

function decimal(value: Buffer, key: string, at: number): number {
  const s = decoder.decode(value);
  if (!/^[0-9]{1,16}$/.test(s)) throw new FormatError(`PAX ${key} is not a decimal number at offset ${at}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new FormatError(`PAX ${key} does not fit in 2^53 at offset ${at}`);
  return n;
}

/** "secs[.frac]" (possibly negative) → whole milliseconds, floored, without float rounding surprises. */
export function paxTimeMs(s: string, at: number): number {
  const m = /^(-?)([0-9]{1,15})(?:\.([0-9]*))?$/.exec(s);
  if (m === null)
    throw new FormatError(`PAX mtime ${JSON.stringify(s.slice(0, 40))} is malformed at offset ${at}`);
  const secs = Number(m[2]);
  const ms = Number(((m[3] ?? '') + '000').slice(0, 3));
  const hasRest = /[1-9]/.test((m[3] ?? '').slice(3));
  if (m[1] === '-') return -(secs * 1000 + ms) - (hasRest ? 1 : 0);
  return secs * 1000 + ms;
}

function safeDecodeURIComponent(s: string, at: number): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new FormatError(`bad LIBARCHIVE.xattr name at offset ${at}`);
  }
}
