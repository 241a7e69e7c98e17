// Folds a layer's tar entries into its Entry list: whiteouts, opaque dirs, hardlink sizes, duplicates
// (last wins; dir over dir keeps children), implicit parent dirs, and the always-present root. Capped in entries
// and in the JSON the index will take (INDEX_LIMITS), so a hostile layer ends in a FormatError.
import { FormatError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { INDEX_LIMITS, utf8Bytes } from '../image/index-limits.js';
import type { Entry } from '../image/layer-index.js';
import {
  OPAQUE_MARKER,
  WHITEOUT_PREFIX,
  baseName,
  joinPath,
  normalizeLayerPath,
  parentPath,
} from '../image/paths.js';
import type { TarEntry } from '../image/tar.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type MutableEntry = Mutable<Entry>;

const IMPLICIT_DIR_MODE = 0o755;
/** JSON of an entry beyond its strings: keys, ids, mode, size, times, offset, a sha256 digest. */
const ENTRY_JSON_BYTES = 200;

function implicitDir(path: string): MutableEntry {
  return { path, type: 'dir', mode: IMPLICIT_DIR_MODE, uid: 0, gid: 0, size: 0, mtimeMs: 0 };
}

export class EntryTable {
  private readonly map = new Map<string, MutableEntry>([['', implicitDir('')]]);
  /** Direct children of each dir that has any: replacing a dir drops its subtree without a full scan. */
  private readonly children = new Map<string, Set<string>>();
  /** Header JSON the entries added so far would take (replaced ones included: a bound, not a size). */
  private jsonBytes = 0;

  constructor(private readonly label = 'layer') {}

  /** Adds one tar entry; returns the Entry a regular file's content digest should be set on, if any. */
  add(t: TarEntry): MutableEntry | undefined {
    this.account(t);
    const base = baseName(t.name);
    if (base === OPAQUE_MARKER) {
      const dir = this.ensureDir(parentPath(t.name));
      dir.opaque = true;
      return undefined;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      // `.wh..wh.*` are aufs housekeeping names, never whiteouts.
      if (hidden === '' || hidden.startsWith(WHITEOUT_PREFIX)) return undefined;
      if (hidden === '.' || hidden === '..') {
        throw new FormatError(`${this.label}: whiteout ${JSON.stringify(t.name)} names ${hidden}`);
      }
      const path = joinPath(parentPath(t.name), hidden);
      const existing = this.map.get(path);
      // A whiteout only hides lower layers: it never displaces this layer's own entry.
      if (existing !== undefined && existing.type !== 'whiteout') return undefined;
      this.ensureParents(path);
      this.set({ path, type: 'whiteout', mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: t.mtimeMs });
      return undefined;
    }
    const e: MutableEntry = {
      path: t.name,
      type: t.type,
      mode: t.mode,
      uid: t.uid,
      gid: t.gid,
      size: t.type === 'file' ? t.size : 0,
      mtimeMs: t.mtimeMs,
    };
    // Shared, not copied: a global PAX header's xattrs are one object for every entry.
    if (Object.keys(t.xattrs).length > 0) e.xattrs = t.xattrs;
    if (t.type === 'symlink') e.linkTarget = t.linkName;
    if (t.type === 'char' || t.type === 'block') {
      e.devMajor = t.devMajor;
      e.devMinor = t.devMinor;
    }
    if (t.type === 'file') e.dataOffset = t.dataOffset;
    // Sized, and dropped when dangling, once the whole layer is in (entries()).
    if (t.type === 'hardlink') e.linkTarget = normalizeLayerPath(t.linkName);
    if (e.path === '') {
      if (e.type === 'dir') this.replace(e);
      return undefined;
    }
    this.ensureParents(e.path);
    this.replace(e);
    return e.type === 'file' ? e : undefined;
  }

  /**
   * Entries sorted by path (plain string order); the root first. A hardlink takes its target's size; one
   * whose target is missing, a dir or a whiteout is left out (the layer tree would drop it anyway).
   */
  entries(): Entry[] {
    const out: Entry[] = [];
    for (const e of this.map.values()) {
      if (e.type === 'hardlink') {
        const t = this.resolve(e);
        if (t === undefined) continue;
        e.size = t.type === 'file' ? t.size : 0;
      }
      out.push(e);
    }
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** The non-hardlink entry a hardlink names through any chain, or undefined for a dangling link or cycle. */
  private resolve(e: MutableEntry): MutableEntry | undefined {
    let t: MutableEntry | undefined = e;
    for (let depth = 0; t?.type === 'hardlink' && depth < 64; depth++) {
      const next = this.map.get(t.linkTarget ?? '');
      if (next === undefined || next === e) return undefined;
      t = next;
    }
    if (t === undefined || t.type === 'hardlink' || t.type === 'dir' || t.type === 'whiteout')
      return undefined;
    return t;
  }

  private account(t: TarEntry): void {
    this.jsonBytes += ENTRY_JSON_BYTES + utf8Bytes(t.name) + utf8Bytes(t.linkName);
    for (const [k, v] of Object.entries(t.xattrs)) this.jsonBytes += utf8Bytes(k) + v.length + 8;
    if (this.jsonBytes > INDEX_LIMITS.maxHeaderJsonBytes) {
      throw new FormatError(
        `${this.label}: the index would need over ${INDEX_LIMITS.maxHeaderJsonBytes} bytes of header` +
          ` (at the tar entry at offset ${t.headerOffset})`,
      );
    }
  }

  /** Inserts or replaces the entry at e.path, keeping the children index and the entry cap. */
  private set(e: MutableEntry): void {
    if (!this.map.has(e.path)) {
      if (this.map.size >= INDEX_LIMITS.maxEntries) {
        throw new FormatError(`${this.label}: more than ${INDEX_LIMITS.maxEntries} entries`);
      }
      const parent = parentPath(e.path);
      let kids = this.children.get(parent);
      if (kids === undefined) this.children.set(parent, (kids = new Set()));
      kids.add(e.path);
    }
    this.map.set(e.path, e);
  }

  /** Removes everything below `path`. */
  private dropSubtree(path: string): void {
    const kids = this.children.get(path);
    if (kids === undefined) return;
    this.children.delete(path);
    for (const k of kids) {
      this.dropSubtree(k);
      this.map.delete(k);
    }
  }

  setDigest(e: MutableEntry, digest: Digest): void {
    e.digest = digest;
  }

  private replace(e: MutableEntry): void {
    const old = this.map.get(e.path);
    if (old !== undefined && old.type === 'dir') {
      if (e.type === 'dir') {
        if (old.opaque === true) e.opaque = true; // the marker applies wherever it appears
      } else {
        this.dropSubtree(e.path);
      }
    }
    this.set(e);
  }

  private ensureParents(path: string): void {
    const parent = parentPath(path);
    if (parent !== '') this.ensureDir(parent);
  }

  private ensureDir(path: string): MutableEntry {
    const existing = this.map.get(path);
    if (existing !== undefined && existing.type === 'dir') return existing;
    if (path !== '') this.ensureParents(path);
    const dir = implicitDir(path);
    this.set(dir);
    return dir;
  }
}
