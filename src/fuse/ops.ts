// The fuse-native operation handlers for one read-only layer: every callback answers exactly once, reads
// never throw (positive count or negative errno), and xattr lookups never answer ENOSYS.
import type { FuseOps } from 'fuse-native';
import { NotFoundError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LayerNode, LayerTree } from '../layer/layer-tree.js';
import type { LayerReader } from '../layer/layer-reader.js';
import { demandRead } from './demand-read.js';
import { statOf, statfsOf, xattrNamesOf, xattrOf } from './attrs.js';
import { EACCES, EISDIR, ENOENT, ENOTDIR, EROFS, ErrnoMapper } from './errno.js';

const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const W_OK = 2;

export interface LayerOpsOptions {
  tree: LayerTree;
  reader: LayerReader;
  log: Logger;
  /** A read not answered within this long fails with EIO; the fetch behind it goes on to fill the cache. */
  readDeadlineMs?: number;
}

export interface LayerOps {
  readonly ops: FuseOps;
  readonly errors: ErrnoMapper;
  /** Open file handles (for tests and status). */
  readonly openHandles: () => number;
  /** Aborts reads in flight (on unmount). */
  close(): void;
}

export function createLayerOps(options: LayerOpsOptions): LayerOps {
  const { tree, reader, log, readDeadlineMs } = options;
  const errors = new ErrnoMapper({ log });
  const handles = new Map<number, LayerNode>();
  const closing = new AbortController();
  let nextFh = 1;

  const allocFh = (node: LayerNode): number => {
    // fh is an int32 and 0 means "unset": wrap around, skipping live handles.
    while (handles.has(nextFh) || nextFh === 0) nextFh = nextFh >= 0x7fffffff ? 1 : nextFh + 1;
    const fh = nextFh;
    handles.set(fh, node);
    nextFh = nextFh >= 0x7fffffff ? 1 : nextFh + 1;
    return fh;
  };

  const ops: FuseOps = {
    init(cb) {
      cb(0);
    },
    getattr(path, cb) {
      const node = tree.lookup(path);
      if (node === undefined) return cb(ENOENT);
      cb(0, statOf(node));
    },
    readdir(path, cb) {
      const node = tree.lookup(path);
      if (node === undefined) return cb(ENOENT);
      if (node.children === undefined) return cb(ENOTDIR);
      const parent =
        path === '/' || path === '' ? tree.root : tree.lookup(path.slice(0, path.lastIndexOf('/')));
      const names = ['.', '..'];
      const stats = [statOf(node), statOf(parent ?? tree.root)];
      for (const [name, child] of node.children) {
        names.push(name);
        stats.push(statOf(child)); // overlay reads whiteouts (char 0:0) from d_type
      }
      cb(0, names, stats);
    },
    readlink(path, cb) {
      const node = tree.lookup(path);
      if (node === undefined) return cb(ENOENT);
      if (node.type !== 'symlink' || node.linkTarget === undefined) return cb(-22);
      cb(0, node.linkTarget);
    },
    open(path, flags, cb) {
      const node = tree.lookup(path);
      if (node === undefined) return cb(ENOENT);
      if (node.type === 'dir') return cb(EISDIR);
      if ((flags & O_ACCMODE) !== O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_APPEND)) !== 0) {
        return cb(EROFS);
      }
      if (node.type === 'whiteout') return cb(EACCES);
      const fh = allocFh(node);
      reader.readAhead?.open(fh, node); // read-ahead hook
      cb(0, fh);
    },
    read(path, fh, buf, len, pos, cb) {
      const node = handles.get(fh) ?? tree.lookup(path);
      if (node === undefined) {
        cb(
          errors.fail(
            new NotFoundError(`no such file ${path} in layer ${tree.index.layerDigest}`),
            'read',
            path,
          ),
        );
        return;
      }
      const work = demandRead({
        reader,
        node,
        fh,
        offset: pos,
        length: len,
        path,
        readDeadlineMs,
        signal: closing.signal,
      });
      work.then(
        (bytes) => {
          // Copy now: fuse-native detaches `buf` after the callback, and we must not keep it.
          const n = bytes.copy(buf, 0, 0, Math.min(len, bytes.length));
          cb(n);
        },
        (e: unknown) => cb(errors.fail(e, 'read', path)),
      );
    },
    release(_path, fh, cb) {
      handles.delete(fh);
      reader.readAhead?.release(fh); // read-ahead hook
      cb(0);
    },
    opendir(path, _flags, cb) {
      const node = tree.lookup(path);
      if (node === undefined) return cb(ENOENT);
      if (node.type !== 'dir') return cb(ENOTDIR);
      cb(0, 0);
    },
    releasedir(_path, _fh, cb) {
      cb(0);
    },
    getxattr(path, name, _position, cb) {
      const node = tree.lookup(path);
      if (node === undefined) return cb(ENOENT);
      cb(0, xattrOf(node, name) ?? null);
    },
    listxattr(path, cb) {
      const node = tree.lookup(path);
      if (node === undefined) return cb(ENOENT);
      cb(0, xattrNamesOf(node));
    },
    statfs(_path, cb) {
      cb(0, statfsOf(tree));
    },
    access(path, mode, cb) {
      const node = tree.lookup(path);
      if (node === undefined) return cb(ENOENT);
      cb((mode & W_OK) !== 0 ? EROFS : 0);
    },
  };

  return {
    ops,
    errors,
    openHandles: () => handles.size,
    close: () => {
      closing.abort();
      reader.readAhead?.close(); // read-ahead hook
    },
  };
}
