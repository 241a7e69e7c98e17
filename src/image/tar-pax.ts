// PAX extended headers: parsing "<len> <key>=<value>\n" records and applying path, linkpath, size, mtime,
// uid, gid and xattrs (SCHILY.xattr.* raw, LIBARCHIVE.xattr.* base64) to the entry that follows. Global
// headers are folded once into overrides that every later entry shares by reference (never copied per entry),
// and the xattrs an entry ends up with are capped (INDEX_LIMITS).
import { FormatError } from '../errors.js';
import { INDEX_LIMITS, utf8Bytes } from './index-limits.js';

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
    if (len > INDEX_LIMITS.maxPaxRecordBytes) {
      throw new FormatError(
        `PAX record of ${len} bytes at offset ${at}, above ${INDEX_LIMITS.maxPaxRecordBytes}`,
      );
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
  readonly path?: string;
  readonly linkpath?: string;
  readonly size?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtimeMs?: number;
  /** Shared between entries (frozen): copy before changing. */
  readonly xattrs: Readonly<Record<string, string>>;
}

export const NO_PAX: PaxOverrides = Object.freeze({ xattrs: Object.freeze({}) });

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Folds records over `base` (the global overrides, or NO_PAX); xattrs stay shared when none are added. */
export function applyPax(base: PaxOverrides, records: PaxRecords, at: number): PaxOverrides {
  if (records.size === 0) return base;
  const o: Mutable<PaxOverrides> = { ...base };
  let xattrs: Record<string, string> | undefined;
  for (const [key, value] of records) {
    if (key === 'path') o.path = value.toString('utf8');
    else if (key === 'linkpath') o.linkpath = value.toString('utf8');
    else if (key === 'size') o.size = decimal(value, key, at);
    else if (key === 'uid') o.uid = decimal(value, key, at);
    else if (key === 'gid') o.gid = decimal(value, key, at);
    else if (key === 'mtime') o.mtimeMs = paxTimeMs(value.toString('latin1'), at);
    else if (key.startsWith('SCHILY.xattr.')) {
      xattrs ??= { ...base.xattrs };
      xattrs[key.slice(13)] = value.toString('base64');
    } else if (key.startsWith('LIBARCHIVE.xattr.')) {
      const name = safeDecodeURIComponent(key.slice(17), at);
      xattrs ??= { ...base.xattrs };
      xattrs[name] = Buffer.from(value.toString('latin1'), 'base64').toString('base64');
    }
  }
  if (xattrs !== undefined) {
    checkXattrs(xattrs, at);
    o.xattrs = Object.freeze(xattrs);
  }
  return o;
}

/** Per-entry caps: count, name and value length, total bytes (values counted decoded). */
function checkXattrs(xattrs: Record<string, string>, at: number): void {
  const names = Object.keys(xattrs);
  const L = INDEX_LIMITS;
  if (names.length > L.maxXattrsPerEntry) {
    throw new FormatError(
      `${names.length} xattrs for the entry at offset ${at}, above ${L.maxXattrsPerEntry}`,
    );
  }
  let total = 0;
  for (const name of names) {
    const bytes = Buffer.byteLength(xattrs[name]!, 'base64');
    if (name === '' || name.includes('\0') || utf8Bytes(name) > L.maxXattrNameBytes) {
      throw new FormatError(
        `xattr name ${JSON.stringify(name.slice(0, 64))} is empty, has NUL or is too long at offset ${at}`,
      );
    }
    if (bytes > L.maxXattrValueBytes) {
      throw new FormatError(
        `xattr ${JSON.stringify(name)} of ${bytes} bytes at offset ${at}, above ${L.maxXattrValueBytes}`,
      );
    }
    total += bytes + utf8Bytes(name);
  }
  if (total > L.maxXattrBytesPerEntry) {
    throw new FormatError(
      `${total} bytes of xattrs for the entry at offset ${at}, above ${L.maxXattrBytesPerEntry}`,
    );
  }
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
