// Test helper for the eStargz writer: one tar entry's header blocks (ustar, preceded by a PAX header when needed).
// PAX carries long names/link names, large ids and SCHILY.xattr.* records with raw byte values.

export interface TarHeaderFields {
  name: string;
  size: number;
  typeflag: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeSec?: number;
  linkname?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Record<string, Buffer>;
}

const BLOCK = 512;
const MAX_OCTAL_7 = 0o7777777;

function octal(b: Buffer, off: number, len: number, n: number): void {
  b.write(`${n.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
}

function ustar(f: Required<Omit<TarHeaderFields, 'xattrs'>>): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'utf8');
  octal(b, 100, 8, f.mode);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, f.mtimeSec);
  b.write(f.typeflag, 156, 1, 'latin1');
  b.write(f.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  octal(b, 329, 8, f.devMajor);
  octal(b, 337, 8, f.devMinor);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** `"<len> <key>=<value>\n"` where len counts the whole record, its own digits included. */
function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(key) + value.length + 3; // space, '=', '\n'
  let len = rest + 1;
  while (String(len).length + rest !== len) len = String(len).length + rest;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

function pad(b: Buffer): Buffer {
  const p = (BLOCK - (b.length % BLOCK)) % BLOCK;
  return p ? Buffer.concat([b, Buffer.alloc(p)]) : b;
}

/** The header blocks for one entry (not its data). */
export function encodeTarHeader(h: TarHeaderFields): Buffer {
  const f = {
    name: h.name,
    size: h.size,
    typeflag: h.typeflag,
    mode: h.mode ?? 0,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    mtimeSec: h.mtimeSec ?? 0,
    linkname: h.linkname ?? '',
    devMajor: h.devMajor ?? 0,
    devMinor: h.devMinor ?? 0,
  };
  const records: Buffer[] = [];
  if (Buffer.byteLength(f.name) > 100) records.push(paxRecord('path', Buffer.from(f.name)));
  if (Buffer.byteLength(f.linkname) > 100) records.push(paxRecord('linkpath', Buffer.from(f.linkname)));
  if (f.uid > MAX_OCTAL_7) records.push(paxRecord('uid', Buffer.from(String(f.uid))));
  if (f.gid > MAX_OCTAL_7) records.push(paxRecord('gid', Buffer.from(String(f.gid))));
  for (const k of Object.keys(h.xattrs ?? {}).sort())
    records.push(paxRecord(`SCHILY.xattr.${k}`, h.xattrs![k]!));
  const main = ustar({
    ...f,
    // Over-long fields are truncated in ustar; the PAX records above carry the real values.
    name: Buffer.from(f.name)
      .subarray(0, 100)
      .toString('utf8')
      .replace(/\uFFFD+$/, ''),
    linkname: Buffer.from(f.linkname)
      .subarray(0, 100)
      .toString('utf8')
      .replace(/\uFFFD+$/, ''),
    uid: Math.min(f.uid, MAX_OCTAL_7),
    gid: Math.min(f.gid, MAX_OCTAL_7),
  });
  if (records.length === 0) return main;
  const data = Buffer.concat(records);
  const base = f.name.replace(/\/+$/, '').split('/').pop() ?? 'x';
  const paxName = `PaxHeaders.0/${base}`.slice(0, 99);
  const pax = ustar({
    ...f,
    name: paxName,
    size: data.length,
    typeflag: 'x',
    linkname: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
  });
  return Buffer.concat([pax, pad(data), main]);
}
