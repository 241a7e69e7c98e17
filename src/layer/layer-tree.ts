// LayerTree: the immutable, overlay-ready view of one layer built from LayerIndex.entries: stable inode
// numbers, hardlinks sharing one node, whiteouts as char 0/0, opaque dirs, `.wh.*` names hidden. Held for every
// mounted layer, so compact: nodes by inode in an array, paths only in their entries and dirs' name maps.
import type { Entry, EntryType, LayerIndex } from '../image/layer-index.js';
import { WHITEOUT_PREFIX, baseName, parentPath } from '../image/paths.js';

export type NodeType = Exclude<EntryType, 'hardlink'>;

export interface LayerNode {
  /** Stable within the layer: entry position + 2 (root is 1; synthesised parent dirs come after entries). */
  readonly ino: number;
  /** Path of the entry that owns the node (for a hardlink name, the target's path). */
  readonly path: string;
  readonly type: NodeType;
  /** Permission bits incl. setuid/setgid/sticky; 0 for whiteouts. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** File content length; symlink target length in bytes; 0 otherwise. */
  readonly size: number;
  readonly mtimeMs: number;
  readonly nlink: number;
  readonly linkTarget?: string;
  readonly devMajor: number;
  readonly devMinor: number;
  /** Decoded extended attributes of the entry (overlay-private names removed). */
  readonly xattrs: ReadonlyMap<string, Buffer>;
  readonly opaque: boolean;
  readonly dataOffset?: number;
  /** Directories only: visible children by name. */
  readonly children?: ReadonlyMap<string, LayerNode>;
}

interface MutableNode {
  ino: number;
  path: string;
  type: NodeType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  nlink: number;
  linkTarget?: string;
  devMajor: number;
  devMinor: number;
  xattrs: ReadonlyMap<string, Buffer>;
  opaque: boolean;
  dataOffset?: number;
  children?: Map<string, MutableNode>;
}

/** Overlay's own xattrs are synthesised from the index, never passed through from the tar. */
function isOverlayPrivate(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** The xattrs of every node that has none (most): one shared empty map, not one per node. */
const NO_XATTRS: ReadonlyMap<string, Buffer> = new Map();

function xattrsOf(e: Entry): ReadonlyMap<string, Buffer> {
  if (e.xattrs === undefined) return NO_XATTRS;
  const xattrs = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(e.xattrs))
    if (!isOverlayPrivate(k)) xattrs.set(k, Buffer.from(v, 'base64'));
  return xattrs.size === 0 ? NO_XATTRS : xattrs;
}

function nodeFromEntry(e: Entry, ino: number): MutableNode {
  const whiteout = e.type === 'whiteout';
  const xattrs = xattrsOf(e);
  const n: MutableNode = {
    ino,
    path: e.path,
    type: e.type === 'hardlink' ? 'file' : e.type,
    mode: whiteout ? 0 : e.mode & 0o7777,
    uid: whiteout ? 0 : e.uid,
    gid: whiteout ? 0 : e.gid,
    size: e.type === 'file' ? e.size : e.type === 'symlink' ? Buffer.byteLength(e.linkTarget ?? '') : 0,
    mtimeMs: e.mtimeMs,
    nlink: 1,
    devMajor: whiteout ? 0 : (e.devMajor ?? 0),
    devMinor: whiteout ? 0 : (e.devMinor ?? 0),
    xattrs,
    opaque: e.type === 'dir' && e.opaque === true,
  };
  if (e.type === 'symlink') n.linkTarget = e.linkTarget ?? '';
  if (e.type === 'file' && e.dataOffset !== undefined) n.dataOffset = e.dataOffset;
  if (e.type === 'dir') n.children = new Map();
  return n;
}

function syntheticDir(path: string, ino: number): MutableNode {
  const n = nodeFromEntry({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0 }, ino);
  return n;
}

export class LayerTree {
  readonly index: LayerIndex;
  readonly root: LayerNode;
  /** Every node at its inode number (FUSE node ids are inodes); holes where an entry made no node. */
  private readonly byIno: ReadonlyArray<LayerNode | undefined>;
  /** Parent inodes, by inode (for a hardlinked file, its first name's: only directories' are asked for). */
  private readonly parents: Uint32Array;
  /** Number of distinct nodes (inodes). */
  readonly nodeCount: number;

  private constructor(
    index: LayerIndex,
    root: LayerNode,
    byIno: Array<LayerNode | undefined>,
    parents: Uint32Array,
    nodeCount: number,
  ) {
    this.index = index;
    this.root = root;
    this.byIno = byIno;
    this.parents = parents;
    this.nodeCount = nodeCount;
  }

  static fromIndex(index: LayerIndex): LayerTree {
    const byPath = new Map<string, MutableNode>();
    const hardlinks: Entry[] = [];
    let nextIno = index.entries.length + 2;

    // Pass 1: one node per non-hardlink entry. Duplicates: the last wins, except that a whiteout never
    // replaces a real entry of the same name (the whiteout targets lower layers only).
    index.entries.forEach((e, i) => {
      if (e.path !== '' && baseName(e.path).startsWith(WHITEOUT_PREFIX)) return;
      if (e.type === 'hardlink') {
        hardlinks.push(e);
        return;
      }
      const prev = byPath.get(e.path);
      if (prev !== undefined && e.type === 'whiteout' && prev.type !== 'whiteout') return;
      const node = nodeFromEntry(e, e.path === '' ? 1 : i + 2);
      if (e.path === '' && node.type !== 'dir') return; // the root must be a directory
      byPath.set(e.path, node);
    });
    if (!byPath.has('')) byPath.set('', syntheticDir('', 1));

    // Pass 2: hardlink names share their target's node (chains followed, cycles and dangling links dropped).
    const entryByPath = new Map(index.entries.map((e) => [e.path, e] as const));
    for (const h of hardlinks) {
      if (byPath.has(h.path)) continue;
      let target = h.linkTarget;
      for (let depth = 0; target !== undefined && depth < 32; depth++) {
        const t = entryByPath.get(target);
        if (t?.type !== 'hardlink') break;
        target = t.linkTarget;
      }
      const node = target === undefined ? undefined : byPath.get(target);
      if (node === undefined || node.type === 'dir' || node.type === 'whiteout') continue;
      byPath.set(h.path, node);
      node.nlink++;
    }

    // Pass 3: link every path into its parent, synthesising missing parent dirs.
    const paths = [...byPath.keys()].sort();
    const ensureDir = (path: string): MutableNode | undefined => {
      const existing = byPath.get(path);
      if (existing !== undefined) return existing.type === 'dir' ? existing : undefined;
      const parent = ensureDir(parentPath(path));
      if (parent === undefined) return undefined;
      const dir = syntheticDir(path, nextIno++);
      byPath.set(path, dir);
      parent.children?.set(baseName(path), dir);
      return dir;
    };
    for (const path of paths) {
      if (path === '') continue;
      const parent = ensureDir(parentPath(path));
      const node = byPath.get(path);
      if (parent === undefined || node === undefined) {
        byPath.delete(path); // its parent is not a directory in this layer: unreachable
        continue;
      }
      parent.children?.set(baseName(path), node);
    }

    // Pass 4: directory link counts; drop paths that became unreachable; index by inode. The path map is
    // dropped here: lookups walk the dirs' name maps.
    const byIno = new Array<LayerNode | undefined>(nextIno).fill(undefined);
    const parents = new Uint32Array(nextIno);
    let nodeCount = 0;
    for (const [path, node] of byPath) {
      if (path !== '' && !reachable(byPath, path)) continue;
      if (node.type === 'dir') {
        let subdirs = 0;
        for (const c of node.children?.values() ?? []) if (c.type === 'dir') subdirs++;
        node.nlink = 2 + subdirs;
      }
      // Directories have one path, so their parent is unique; for other nodes it is never asked for.
      if (byIno[node.ino] === undefined) {
        byIno[node.ino] = node;
        nodeCount++;
        parents[node.ino] = byPath.get(parentPath(path))?.ino ?? 1;
      }
    }
    const root = byPath.get('')!;
    parents[1] = 1;
    return new LayerTree(index, root, byIno, parents, nodeCount);
  }

  /** The node with inode number `ino` (root is 1), or undefined. */
  node(ino: number): LayerNode | undefined {
    return Number.isInteger(ino) && ino > 0 ? this.byIno[ino] : undefined;
  }

  /** The inode of directory `ino`'s parent (the root is its own parent); undefined for an unknown ino. */
  parentOf(ino: number): number | undefined {
    return this.node(ino) === undefined ? undefined : this.parents[ino];
  }

  /** Node at a layer path ('' or '/' is the root; leading '/' allowed, as FUSE passes it). */
  lookup(path: string): LayerNode | undefined {
    let node: LayerNode | undefined = this.root;
    let at = path.startsWith('/') ? 1 : 0;
    while (node !== undefined && at < path.length) {
      const slash = path.indexOf('/', at);
      const end = slash < 0 ? path.length : slash;
      // A trailing '/' ends the walk; an empty component in the middle ('a//b') names nothing.
      if (end === at) return slash === path.length - 1 ? node : undefined;
      node = node.children?.get(path.slice(at, end));
      at = end + 1;
    }
    return node;
  }

  /** Every visible path with its node (hardlink names with their target's node), in no particular order. */
  *paths(): IterableIterator<[string, LayerNode]> {
    yield ['', this.root];
    const stack: Array<[string, LayerNode]> = [['', this.root]];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const [dir, node] = top;
      for (const [name, child] of node.children ?? []) {
        const path = dir === '' ? name : `${dir}/${name}`;
        yield [path, child];
        if (child.type === 'dir') stack.push([path, child]);
      }
    }
  }
}

function reachable(byPath: Map<string, MutableNode>, path: string): boolean {
  let p = path;
  while (p !== '') {
    const parent = byPath.get(parentPath(p));
    if (parent?.children?.get(baseName(p)) !== byPath.get(p)) return false;
    p = parentPath(p);
  }
  return true;
}
