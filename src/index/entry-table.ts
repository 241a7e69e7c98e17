// Folds a layer's tar entries into its Entry list: whiteouts, opaque dirs, hardlink sizes, duplicates
// (last wins; dir over dir keeps children), implicit parent dirs, and the always-present root.
import type { Digest } from '../image/digest.js';
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

function implicitDir(path: string): MutableEntry {
  return { path, type: 'dir', mode: IMPLICIT_DIR_MODE, uid: 0, gid: 0, size: 0, mtimeMs: 0 };
}

export class EntryTable {
  private readonly map = new Map<string, MutableEntry>([['', implicitDir('')]]);

  /** Adds one tar entry; returns the Entry a regular file's content digest should be set on, if any. */
  add(t: TarEntry): MutableEntry | undefined {
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
      const path = joinPath(parentPath(t.name), hidden);
      const existing = this.map.get(path);
      // A whiteout only hides lower layers: it never displaces this layer's own entry.
      if (existing !== undefined && existing.type !== 'whiteout') return undefined;
      this.ensureParents(path);
      this.map.set(path, { path, type: 'whiteout', mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: t.mtimeMs });
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
    if (Object.keys(t.xattrs).length > 0) e.xattrs = { ...t.xattrs };
    if (t.type === 'symlink') e.linkTarget = t.linkName;
    if (t.type === 'char' || t.type === 'block') {
      e.devMajor = t.devMajor;
      e.devMinor = t.devMinor;
    }
    if (t.type === 'file') e.dataOffset = t.dataOffset;
    if (t.type === 'hardlink') {
      // A link whose target is missing is kept with size 0: the reader answers ENOENT for its content.
      const target = normalizeLayerPath(t.linkName);
      e.linkTarget = target;
      const te = this.map.get(target);
      if (te !== undefined && (te.type === 'file' || te.type === 'hardlink')) e.size = te.size;
    }
    if (e.path === '') {
      if (e.type === 'dir') this.replace(e);
      return undefined;
    }
    this.ensureParents(e.path);
    this.replace(e);
    return e.type === 'file' ? e : undefined;
  }

  /** Entries sorted by path (plain string order); the root first. */
  entries(): Entry[] {
    return [...this.map.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
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
        const prefix = `${e.path}/`;
        for (const k of [...this.map.keys()]) if (k.startsWith(prefix)) this.map.delete(k);
      }
    }
    this.map.set(e.path, e);
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
    this.map.set(path, dir);
    return dir;
  }
}
