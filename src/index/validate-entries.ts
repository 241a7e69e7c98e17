// The entry half of validateIndex: normalised bounded paths, sorted and unique, parents present as dirs,
// hardlinks resolvable, fields consistent with each type, xattrs capped, file bytes covered by chunks.
import { FormatError } from '../errors.js';
import { INDEX_LIMITS as L, utf8Bytes } from '../image/index-limits.js';
import { findChunk, type Chunk, type Entry, type LayerIndex } from '../image/layer-index.js';
import { parentPath } from '../image/paths.js';

const MAX_ID = 0xffff_ffff;

/** Why `path` is not a normalised layer path, or undefined when it is one. */
export function pathProblem(path: string): string | undefined {
  if (path === '') return undefined;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most names need no byte count at all.
  if (path.length * 3 > L.maxPathBytes && utf8Bytes(path) > L.maxPathBytes)
    return `path longer than ${L.maxPathBytes} bytes`;
  if (path.includes('\0')) return 'path contains NUL';
  if (path.startsWith('/')) return 'path starts with /';
  if (path.endsWith('/')) return 'path ends with /';
  for (let start = 0; start <= path.length;) {
    let end = path.indexOf('/', start);
    if (end < 0) end = path.length;
    const len = end - start;
    if (len === 0) return 'path has an empty component';
    if (len <= 2 && path.charCodeAt(start) === 0x2e && (len === 1 || path.charCodeAt(start + 1) === 0x2e))
      return `path has a ${JSON.stringify(path.slice(start, end))} component`;
    if (len * 3 > L.maxNameBytes && utf8Bytes(path.slice(start, end)) > L.maxNameBytes)
      return `path component longer than ${L.maxNameBytes} bytes`;
    start = end + 1;
  }
  return undefined;
}

export function validateEntries(index: LayerIndex, what: string): void {
  const entries = index.entries;
  if (entries.length > L.maxEntries) {
    throw new FormatError(`${what}: entry cap: ${entries.length} entries, at most ${L.maxEntries}`);
  }
  const root = entries[0];
  if (root === undefined || root.path !== '' || root.type !== 'dir') {
    throw new FormatError(`${what}: root: the first entry must be the root dir ''`);
  }
  const byPath = new Map<string, Entry>();
  let prev: string | undefined;
  for (const e of entries) {
    const bad = (rule: string): FormatError =>
      new FormatError(`${what}: ${rule}: entry ${JSON.stringify(e.path.slice(0, 300))}`);
    const p = pathProblem(e.path);
    if (p !== undefined) throw bad(`path not normalised (${p})`);
    if (prev === e.path) throw bad('duplicate path');
    if (prev !== undefined && !(prev < e.path)) throw bad('entries not sorted by path');
    prev = e.path;
    if (e.path !== '') {
      const parent = byPath.get(parentPath(e.path));
      if (parent === undefined || parent.type !== 'dir') throw bad('parent dir missing');
    }
    checkFields(e, index, bad);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    if (e.type !== 'hardlink') continue;
    const t = byPath.get(e.linkTarget ?? '');
    const bad = `hardlink target ${JSON.stringify((e.linkTarget ?? '').slice(0, 300))}`;
    if (t === undefined || t === e || t.type === 'dir' || t.type === 'whiteout') {
      throw new FormatError(
        `${what}: ${bad} missing or a dir: entry ${JSON.stringify(e.path.slice(0, 300))}`,
      );
    }
  }
}

function checkFields(e: Entry, index: LayerIndex, bad: (rule: string) => FormatError): void {
  if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777)
    throw bad(`mode ${e.mode} not within 0o7777`);
  if (!isId(e.uid) || !isId(e.gid)) throw bad('uid/gid out of range');
  if (!Number.isFinite(e.mtimeMs)) throw bad('mtime not finite');
  if (!Number.isSafeInteger(e.size) || e.size < 0) throw bad('size out of range');
  const isLink = e.type === 'symlink' || e.type === 'hardlink';
  const isDev = e.type === 'char' || e.type === 'block';
  if (isLink !== (e.linkTarget !== undefined)) throw bad(`linkTarget only and always on links (${e.type})`);
  if (e.linkTarget !== undefined) {
    if (e.linkTarget.includes('\0')) throw bad('linkTarget contains NUL');
    if (utf8Bytes(e.linkTarget) > L.maxLinkTargetBytes) throw bad('linkTarget too long');
    if (e.type === 'hardlink' && pathProblem(e.linkTarget) !== undefined)
      throw bad('hardlink target not normalised');
  }
  const hasDev = e.devMajor !== undefined || e.devMinor !== undefined;
  if (isDev ? e.devMajor === undefined || e.devMinor === undefined : hasDev) {
    throw bad(`devMajor/devMinor only and always on char and block devices (${e.type})`);
  }
  if (isDev && (!isId(e.devMajor ?? 0) || !isId(e.devMinor ?? 0))) throw bad('device numbers out of range');
  if (e.opaque !== undefined && e.type !== 'dir') throw bad(`opaque only on dirs (${e.type})`);
  if (e.digest !== undefined && e.type !== 'file') throw bad(`digest only on files (${e.type})`);
  if (e.type !== 'file' && e.type !== 'hardlink' && e.size !== 0) throw bad(`size only on files (${e.type})`);
  if (e.type === 'whiteout' && e.xattrs !== undefined) throw bad('xattrs on a whiteout');
  checkXattrs(e, bad);
  if (e.type !== 'file') {
    if (e.dataOffset !== undefined) throw bad(`dataOffset only on files (${e.type})`);
    return;
  }
  if (e.dataOffset === undefined) {
    if (e.size > 0) throw bad('file without dataOffset');
    return;
  }
  if (
    !Number.isSafeInteger(e.dataOffset) ||
    e.dataOffset < 0 ||
    e.dataOffset + e.size > index.uncompressedSize
  ) {
    throw bad(`file data [${e.dataOffset}, +${e.size}) outside the ${index.uncompressedSize}-byte layer`);
  }
  if (e.size > 0 && !covered(index.chunks, e.dataOffset, e.size)) {
    throw bad(`file data [${e.dataOffset}, +${e.size}) not covered by chunks`);
  }
}

function checkXattrs(e: Entry, bad: (rule: string) => FormatError): void {
  if (e.xattrs === undefined) return;
  const names = Object.keys(e.xattrs);
  if (names.length > L.maxXattrsPerEntry) throw bad(`xattr cap: ${names.length} xattrs`);
  let total = 0;
  for (const name of names) {
    const value = e.xattrs[name]!;
    if (name === '' || name.includes('\0') || utf8Bytes(name) > L.maxXattrNameBytes) {
      throw bad(`xattr name ${JSON.stringify(name.slice(0, 64))} empty, with NUL or too long`);
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
      throw bad(`xattr ${JSON.stringify(name)} value is not base64`);
    }
    const bytes = Buffer.byteLength(value, 'base64');
    if (bytes > L.maxXattrValueBytes)
      throw bad(`xattr ${JSON.stringify(name)} value above ${L.maxXattrValueBytes} bytes`);
    total += bytes + utf8Bytes(name);
  }
  if (total > L.maxXattrBytesPerEntry) throw bad(`xattr cap: ${total} bytes of xattrs`);
}

function isId(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MAX_ID;
}

/** True when chunks (sorted, disjoint) cover [offset, offset + size) without a gap. */
function covered(chunks: readonly Chunk[], offset: number, size: number): boolean {
  let i = findChunk(chunks, offset);
  if (i < 0) return false;
  let at = offset;
  const end = offset + size;
  for (;;) {
    const c = chunks[i];
    if (c === undefined || c.offset > at) return false;
    at = c.offset + c.size;
    if (at >= end) return true;
    i++;
  }
}
