// The metadata half of the raw FUSE server: requests answered from the immutable LayerTree alone (LOOKUP,
// GETATTR, READLINK, OPENDIR, READDIR(PLUS), xattrs, STATFS, ACCESS), synchronously and with no state.
import type { LayerNode, LayerTree } from '../../layer/layer-tree.js';
import { statOf, statfsOf, xattrNamesOf, xattrOf } from '../attrs.js';
import { EINVAL, ENODATA, ENOENT, ENOTDIR, ERANGE, EROFS } from '../errno.js';
import { listDir } from './dir-listing.js';
import {
  FOPEN_CACHE_DIR,
  FOPEN_KEEP_CACHE,
  Opcode,
  decodeAccessIn,
  decodeGetxattrIn,
  decodeListxattrIn,
  decodeName,
  decodeReadIn,
  encodeReply,
  type InHeader,
} from './protocol.js';
import {
  encodeAttrOut,
  encodeEntryOut,
  encodeGetxattrOut,
  encodeOpenOut,
  encodeStatfsOut,
  type EntryTimeouts,
} from './protocol-replies.js';

const W_OK = 2;

export interface TreeAnswerOptions {
  tree: LayerTree;
  timeouts: EntryTimeouts;
  negativeTimeoutSec: number;
}

/** The node a request names, or the negative errno to answer. */
export function nodeOf(tree: LayerTree, h: InHeader, want?: 'dir'): LayerNode | number {
  const node = tree.node(h.nodeid);
  if (node === undefined) return ENOENT;
  if (want === 'dir' && node.type !== 'dir') return ENOTDIR;
  return node;
}

/** xattr value or name list: a size probe (size 0) gets the length, a short buffer ERANGE. */
function sized(h: InHeader, value: Buffer, size: number): Buffer {
  if (size === 0) return encodeReply(h.unique, 0, encodeGetxattrOut(value.length));
  if (size < value.length) return encodeReply(h.unique, ERANGE);
  return encodeReply(h.unique, 0, value);
}

/** The reply to a metadata request; undefined when `h.opcode` is not one this module answers. */
export function answerFromTree(o: TreeAnswerOptions, h: InHeader, body: Buffer): Buffer | undefined {
  const { tree } = o;
  const ok = (b?: Buffer): Buffer => encodeReply(h.unique, 0, b);
  const fail = (errno: number): Buffer => encodeReply(h.unique, errno);
  switch (h.opcode) {
    case Opcode.LOOKUP: {
      const parent = nodeOf(tree, h, 'dir');
      if (typeof parent === 'number') return fail(parent);
      const name = decodeName(body);
      if (name === undefined) return fail(EINVAL);
      const child = parent.children?.get(name);
      // A miss is a negative entry the kernel caches: overlay asks lower layers for many names they lack.
      if (child === undefined)
        return ok(encodeEntryOut(0, { entryValidSec: o.negativeTimeoutSec, attrValidSec: 0 }, undefined));
      return ok(encodeEntryOut(child.ino, o.timeouts, statOf(child)));
    }
    case Opcode.GETATTR: {
      const node = nodeOf(tree, h);
      if (typeof node === 'number') return fail(node);
      return ok(encodeAttrOut(o.timeouts.attrValidSec, statOf(node)));
    }
    case Opcode.READLINK: {
      const node = nodeOf(tree, h);
      if (typeof node === 'number') return fail(node);
      if (node.type !== 'symlink' || node.linkTarget === undefined) return fail(EINVAL);
      return ok(Buffer.from(node.linkTarget));
    }
    case Opcode.OPENDIR: {
      const node = nodeOf(tree, h, 'dir');
      if (typeof node === 'number') return fail(node);
      // No handle state: listings go by node id and offset. The kernel may cache the listing (immutable).
      return ok(encodeOpenOut(0, FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE));
    }
    case Opcode.READDIR:
    case Opcode.READDIRPLUS: {
      const dir = nodeOf(tree, h, 'dir');
      if (typeof dir === 'number') return fail(dir);
      const r = decodeReadIn(body);
      if (r === undefined) return fail(EINVAL);
      const parent = tree.node(tree.parentOf(dir.ino) ?? 1) ?? tree.root;
      const plus = h.opcode === Opcode.READDIRPLUS;
      return ok(listDir({ dir, parent, offset: r.offset, sizeBytes: r.size, plus, timeouts: o.timeouts }));
    }
    case Opcode.GETXATTR: {
      const node = nodeOf(tree, h);
      if (typeof node === 'number') return fail(node);
      const x = decodeGetxattrIn(body);
      if (x === undefined) return fail(EINVAL);
      const value = xattrOf(node, x.name);
      return value === undefined ? fail(ENODATA) : sized(h, value, x.size);
    }
    case Opcode.LISTXATTR: {
      const node = nodeOf(tree, h);
      if (typeof node === 'number') return fail(node);
      const x = decodeListxattrIn(body);
      if (x === undefined) return fail(EINVAL);
      return sized(
        h,
        Buffer.from(
          xattrNamesOf(node)
            .map((n) => `${n}\0`)
            .join(''),
        ),
        x.size,
      );
    }
    case Opcode.STATFS:
      return ok(encodeStatfsOut(statfsOf(tree)));
    case Opcode.ACCESS: {
      const node = nodeOf(tree, h);
      if (typeof node === 'number') return fail(node);
      const a = decodeAccessIn(body);
      if (a === undefined) return fail(EINVAL);
      return (a.mask & W_OK) !== 0 ? fail(EROFS) : ok();
    }
    default:
      return undefined;
  }
}
