// MergedLookup: path lookups over an image's layer indexes as overlay merges them (top layer first; whiteouts
// and opaque dirs hide lower layers; symlinks followed within the image, bounded), and a PATH search. Pure.
import type { Entry, LayerIndex } from '../image/layer-index.js';
import { parentPath } from '../image/paths.js';

/** Symlinks followed per lookup at most (Linux's own limit). */
const MAX_SYMLINK_HOPS = 40;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface MergedHit {
  /** Position of the layer in the indexes (bottom first). */
  readonly layer: number;
  readonly index: LayerIndex;
  /** The resolved path (no symlinks), without a leading '/'. */
  readonly path: string;
  /** The entry; for a hardlink name, its target's entry (which holds the content). */
  readonly entry: Entry;
}

interface Layer {
  readonly index: LayerIndex;
  readonly byPath: ReadonlyMap<string, Entry>;
  /** Directories the layer implies (a parent of an entry) without an entry of their own. */
  readonly impliedDirs: ReadonlySet<string>;
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}

export class MergedLookup {
  private readonly layers: readonly Layer[];

  /** `indexes` bottom layer first, as in the manifest. */
  constructor(indexes: readonly LayerIndex[]) {
    this.layers = indexes.map((index) => {
      const byPath = new Map<string, Entry>();
      const impliedDirs = new Set<string>();
      for (const e of index.entries) byPath.set(e.path, e);
      for (const e of index.entries) {
        for (let p = parentPath(e.path); p !== '' && !byPath.has(p); p = parentPath(p)) {
          if (impliedDirs.has(p)) break;
          impliedDirs.add(p);
        }
      }
      return { index, byPath, impliedDirs };
    });
  }

  /**
   * The entry at `path` (absolute or relative to `cwd`), symlinks in every component followed; the last one
   * only when `followLast`. Undefined when it does not exist in the merged tree or the links loop.
   */
  lookup(path: string, o: { cwd?: string; followLast?: boolean } = {}): MergedHit | undefined {
    const follow = o.followLast ?? true;
    let parts = path.startsWith('/') ? splitPath(path) : [...splitPath(o.cwd ?? ''), ...splitPath(path)];
    const done: string[] = [];
    let hit: MergedHit | undefined;
    let hops = 0;
    while (parts.length > 0) {
      const [name, ...rest] = parts;
      parts = rest;
      if (name === '..') {
        done.pop();
        hit = undefined;
        continue;
      }
      const at = [...done, name!].join('/');
      const found = this.exact(at);
      if (found === undefined) return undefined;
      if (found.entry.type === 'symlink' && (parts.length > 0 || follow)) {
        if (++hops > MAX_SYMLINK_HOPS) return undefined;
        const target = found.entry.linkTarget ?? '';
        if (target.startsWith('/')) done.length = 0;
        parts = [...splitPath(target), ...parts];
        hit = undefined;
        continue;
      }
      if (parts.length > 0 && found.entry.type !== 'dir') return undefined;
      done.push(name!);
      hit = found;
    }
    return hit;
  }

  /** A regular file found like a shell finds a command: by path when it names one, else through PATH. */
  which(command: string, o: { pathEnv?: string; cwd?: string } = {}): MergedHit | undefined {
    if (command === '') return undefined;
    if (command.includes('/')) return this.regular(this.lookup(command, { cwd: o.cwd ?? '' }));
    for (const dir of (o.pathEnv ?? DEFAULT_PATH).split(':')) {
      if (dir === '') continue;
      const hit = this.regular(this.lookup(`${dir}/${command}`, { cwd: o.cwd ?? '' }));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }

  private regular(hit: MergedHit | undefined): MergedHit | undefined {
    return hit?.entry.type === 'file' ? hit : undefined;
  }

  /** The topmost visible entry at a symlink-free path, as overlay shows it. */
  private exact(path: string): MergedHit | undefined {
    if (path === '') return undefined;
    for (let l = this.layers.length - 1; l >= 0; l--) {
      const layer = this.layers[l]!;
      const e = layer.byPath.get(path);
      if (e !== undefined) {
        if (e.type === 'whiteout') return undefined;
        const entry = e.type === 'hardlink' ? this.hardlinkTarget(layer, e) : e;
        return entry === undefined ? undefined : { layer: l, index: layer.index, path, entry };
      }
      if (layer.impliedDirs.has(path)) {
        const entry: Entry = { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0 };
        return { layer: l, index: layer.index, path, entry };
      }
      // A whiteout, a non-directory or an opaque dir at an ancestor hides everything below it further down.
      for (let p = parentPath(path); p !== ''; p = parentPath(p)) {
        const a = layer.byPath.get(p);
        if (a !== undefined && (a.type !== 'dir' || a.opaque === true)) return undefined;
      }
    }
    return undefined;
  }

  private hardlinkTarget(layer: Layer, h: Entry): Entry | undefined {
    let e: Entry | undefined = h;
    for (let depth = 0; e?.type === 'hardlink' && depth < 32; depth++)
      e = e.linkTarget === undefined ? undefined : layer.byPath.get(e.linkTarget);
    return e?.type === 'file' ? { ...e, path: h.path } : undefined;
  }
}
