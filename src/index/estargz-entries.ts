// Maps eStargz TOC entries to the layer tree: types, modes, implicit parents, hardlinks, whiteouts and opaque dirs.
// OCI layer rules (image-spec layer.md): last duplicate wins; a whiteout never hides a real entry of its layer.
import { FormatError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import {
  NO_PREFETCH_LANDMARK,
  PREFETCH_LANDMARK,
  TOC_TAR_NAME,
  type EstargzToc,
  type TocEntry,
} from '../image/estargz-toc.js';
import type { Entry, EntryType } from '../image/layer-index.js';
import {
  OPAQUE_MARKER,
  WHITEOUT_PREFIX,
  baseName,
  joinPath,
  normalizeLayerPath,
  parentPath,
} from '../image/paths.js';
import type { FilePayload } from './estargz-chunks.js';

type MutableEntry = { -readonly [K in keyof Entry]: Entry[K] };

const HIDDEN = new Set([TOC_TAR_NAME, PREFETCH_LANDMARK, NO_PREFETCH_LANDMARK]);
const TYPES: Record<Exclude<TocEntry['type'], 'chunk'>, EntryType> = {
  dir: 'dir',
  reg: 'file',
  symlink: 'symlink',
  hardlink: 'hardlink',
  char: 'char',
  block: 'block',
  fifo: 'fifo',
};
const MAX_LINK_DEPTH = 64;

/** normalizeLayerPath, with the layer named in its FormatError. */
export function tocPath(name: string, what: string): string {
  try {
    return normalizeLayerPath(name);
  } catch (e) {
    throw new FormatError(`${what}: ${(e as Error).message}`, { cause: e });
  }
}

/** True for TOC entries the tree never shows: the TOC itself and the prefetch landmarks at the root. */
export function isHiddenTocName(name: string, what: string): boolean {
  // Cheap pre-check: this runs for every payload entry of TOCs with millions of them.
  if (!name.endsWith('.landmark') && !name.endsWith(TOC_TAR_NAME)) return false;
  return HIDDEN.has(tocPath(name, what));
}

function mtimeMs(modtime: string | undefined): number {
  if (!modtime) return 0;
  const t = Date.parse(modtime);
  return Number.isFinite(t) ? t : 0;
}

function implicitDir(path: string): MutableEntry {
  return { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0 };
}

function toEntry(e: TocEntry, path: string, file: FilePayload | undefined): MutableEntry {
  if (e.type === 'chunk') throw new Error('unreachable: chunk entries are not tree entries');
  const out: MutableEntry = {
    path,
    type: TYPES[e.type],
    mode: (e.mode ?? 0) & 0o7777,
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    size: 0,
    mtimeMs: mtimeMs(e.modtime),
  };
  if (e.type === 'reg') {
    out.size = file?.size ?? e.size ?? 0;
    out.dataOffset = file?.dataOffset ?? 0;
    if (e.digest !== undefined) out.digest = e.digest as Digest;
  } else if (e.type === 'symlink' || e.type === 'hardlink') {
    out.linkTarget = e.linkName ?? '';
  } else if (e.type === 'char' || e.type === 'block') {
    out.devMajor = e.devMajor ?? 0;
    out.devMinor = e.devMinor ?? 0;
  }
  if (e.xattrs && Object.keys(e.xattrs).length > 0) out.xattrs = { ...e.xattrs };
  return out;
}

/** Points each hardlink at the final non-hardlink entry it names and gives it that entry's size. */
function resolveHardlinks(tree: Map<string, MutableEntry>, what: string): void {
  for (const entry of tree.values()) {
    if (entry.type !== 'hardlink') continue;
    let target = tocPath(entry.linkTarget ?? '', what);
    let t = tree.get(target);
    for (let depth = 0; t?.type === 'hardlink' && depth < MAX_LINK_DEPTH; depth++) {
      target = tocPath(t.linkTarget ?? '', what);
      t = tree.get(target);
    }
    if (!t || t.type === 'hardlink' || target === entry.path) {
      throw new FormatError(
        `${what}: hardlink ${JSON.stringify(entry.path)} → ${JSON.stringify(entry.linkTarget)} not found in the layer`,
      );
    }
    entry.linkTarget = target;
    entry.size = t.type === 'file' ? t.size : 0;
  }
}

/**
 * Creates missing ancestors of `path` as 0755 dirs. Returns false when a later non-dir entry replaced an ancestor
 * (extraction would have removed this entry); a non-dir ancestor written before its child is corrupt.
 */
function ensureParents(
  tree: Map<string, MutableEntry>,
  seq: ReadonlyMap<string, number>,
  path: string,
  own: number,
  what: string,
): boolean {
  let p = path;
  while (p !== '') {
    p = parentPath(p);
    const existing = tree.get(p);
    if (!existing) {
      tree.set(p, implicitDir(p));
      continue;
    }
    if (existing.type !== 'dir') {
      if ((seq.get(p) ?? -1) > own) return false;
      throw new FormatError(`${what}: ${JSON.stringify(p)} is a ${existing.type} but has children`);
    }
  }
  return true;
}

/** The layer's entries, sorted by path with the root first. `files` maps reg TOC indexes to their payloads. */
export function mapEstargzEntries(
  toc: EstargzToc,
  files: ReadonlyMap<number, FilePayload>,
  what: string,
): Entry[] {
  const tree = new Map<string, MutableEntry>();
  // TOC index that last wrote each path: decides whether a child predates a non-dir that replaced its parent.
  const seq = new Map<string, number>();
  const whiteouts = new Map<string, { mtimeMs: number; seq: number }>();
  const opaque = new Map<string, number>();
  // Dirs named only by hidden markers: extraction still creates them, so the tree shows them.
  const touched = new Map<string, number>();
  tree.set('', implicitDir(''));

  toc.entries.forEach((e, i) => {
    if (e.type === 'chunk') return;
    const path = tocPath(e.name, what);
    if (HIDDEN.has(path)) return;
    const base = baseName(path);
    if (base === OPAQUE_MARKER) {
      opaque.set(parentPath(path), i);
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const hides = base.slice(WHITEOUT_PREFIX.length);
      // `.wh..wh.*` other than the opaque marker is aufs metadata, and `.wh.` alone names nothing.
      if (hides !== '' && !hides.startsWith(WHITEOUT_PREFIX)) {
        whiteouts.set(joinPath(parentPath(path), hides), { mtimeMs: mtimeMs(e.modtime), seq: i });
      } else {
        touched.set(parentPath(path), i);
      }
      return;
    }
    if (path === '' && e.type !== 'dir')
      throw new FormatError(`${what}: eStargz root entry is a ${e.type}, not a dir`);
    tree.set(path, toEntry(e, path, files.get(i)));
    seq.set(path, i);
  });

  for (const path of [...tree.keys()]) {
    if (!ensureParents(tree, seq, path, seq.get(path) ?? -1, what)) tree.delete(path);
  }
  resolveHardlinks(tree, what);
  for (const [path, w] of whiteouts) {
    if (tree.has(path) || !ensureParents(tree, seq, path, w.seq, what)) continue;
    tree.set(path, { path, type: 'whiteout', mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: w.mtimeMs });
  }
  const markDir = (dir: string, at: number, isOpaque: boolean): void => {
    const d = tree.get(dir);
    if (d && d.type !== 'dir') {
      if ((seq.get(dir) ?? -1) > at) return;
      throw new FormatError(`${what}: whiteout marker inside ${JSON.stringify(dir)}, a ${d.type}`);
    }
    if (!d) {
      if (!ensureParents(tree, seq, dir, at, what)) return;
      tree.set(dir, implicitDir(dir));
    }
    if (isOpaque) tree.get(dir)!.opaque = true;
  };
  for (const [dir, at] of opaque) markDir(dir, at, true);
  for (const [dir, at] of touched) markDir(dir, at, false);
  return [...tree.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
