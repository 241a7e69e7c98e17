// READDIR / READDIRPLUS pages of a directory. Offsets are positions, not state: entry i of
// ['.', '..', ...children in the tree's Map order] has d_off i + 1, so any process serving the same tree
// continues a listing another one started.
import { statOf } from '../attrs.js';
import type { LayerNode } from '../../layer/layer-tree.js';
import { DirentWriter, type EntryTimeouts } from './protocol-replies.js';

export interface ListDirOptions {
  dir: LayerNode;
  /** The directory's parent (the root's is itself). */
  parent: LayerNode;
  /** The d_off of the last entry the kernel already has (0 to start). */
  offset: number;
  /** The kernel's buffer size for this page. */
  sizeBytes: number;
  plus: boolean;
  timeouts: EntryTimeouts;
}

/** One page of entries from `offset` on, as many as fit; empty at the end of the directory. */
export function listDir(o: ListDirOptions): Buffer {
  const w = new DirentWriter(o.sizeBytes, o.plus);
  const children = o.dir.children;
  let i = 0;
  const put = (name: string, node: LayerNode): boolean => {
    const at = i++;
    if (at < o.offset) return true;
    return w.add(name, at + 1, statOf(node), o.timeouts);
  };
  // Skipped entries cost no stat; Map iteration has no random access, so a page deep into a huge directory
  // walks the names before it (once per page, the kernel caches the listing: FOPEN_CACHE_DIR).
  if (put('.', o.dir) && put('..', o.parent) && children !== undefined) {
    for (const [name, node] of children) if (!put(name, node)) break;
  }
  return w.bytes;
}
