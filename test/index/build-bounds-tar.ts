// Tar pieces for the hostile layers of build-bounds.test.ts: files, global PAX headers, raw PAX records.
import { encodeTarHeader } from '../helpers/estargz-writer-tar.js';

const BLOCK = 512;

export function pad(b: Buffer): Buffer {
  const p = (BLOCK - (b.length % BLOCK)) % BLOCK;
  return p > 0 ? Buffer.concat([b, Buffer.alloc(p)]) : b;
}

/** `"<len> <key>=<value>\n"`, len counting the whole record. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3;
  let len = rest + 1;
  while (String(len).length + rest !== len) len = String(len).length + rest;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

/** A regular file: header (PAX first when xattrs are given) and padded content. */
export function tarFile(name: string, content: Buffer, xattrs?: Record<string, Buffer>): Buffer {
  const header = encodeTarHeader({
    name,
    typeflag: '0',
    size: content.length,
    mode: 0o644,
    ...(xattrs !== undefined ? { xattrs } : {}),
  });
  return Buffer.concat([header, pad(content)]);
}

/** A PAX header block of `typeflag` ('g' global, 'x' for the next entry) around raw records. */
export function paxHeader(typeflag: 'g' | 'x', records: Buffer[]): Buffer {
  const body = Buffer.concat(records);
  return Buffer.concat([encodeTarHeader({ name: 'pax_header', typeflag, size: body.length }), pad(body)]);
}

export function paxGlobalHeader(xattrs: Record<string, Buffer>): Buffer {
  return paxHeader(
    'g',
    Object.entries(xattrs).map(([k, v]) => paxRecord(`SCHILY.xattr.${k}`, v)),
  );
}

export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
