// Stat, statfs and xattr answers for LayerNodes, shared by the fuse-native ops and the raw protocol server:
// type bits, glibc/kernel rdev encoding, block counts, the synthesised overlay opaque xattr.
import type { LayerNode, LayerTree } from '../layer/layer-tree.js';

export const S_IFMT = 0o170000;
const TYPE_BITS: Record<LayerNode['type'], number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
  whiteout: 0o020000, // overlay whiteout: char device 0/0
};

/** A node's stat fields; times in ms. Structurally a fuse-native FuseStat, without importing it. */
export interface NodeStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: number;
  mtime: number;
  ctime: number;
}

/** Filesystem stats of a layer. Structurally a fuse-native FuseStatfs. */
export interface LayerStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/**
 * glibc makedev truncated to the 32-bit rdev both fuse-native and the kernel's fuse_attr carry (the kernel
 * decodes it with new_decode_dev, the same layout); major bits above 12 do not fit.
 */
export function makeDev(major: number, minor: number): number {
  return (((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12)) >>> 0;
}

export function modeOf(node: LayerNode): number {
  return TYPE_BITS[node.type] | (node.mode & 0o7777);
}

export function statOf(node: LayerNode): NodeStat {
  const t = Math.max(0, node.mtimeMs);
  const isDev = node.type === 'char' || node.type === 'block';
  return {
    mode: modeOf(node),
    uid: node.uid,
    gid: node.gid,
    size: node.type === 'dir' ? 4096 : node.size,
    dev: 0,
    nlink: node.nlink,
    ino: node.ino,
    rdev: isDev ? makeDev(node.devMajor, node.devMinor) : 0,
    blksize: 4096,
    blocks: node.type === 'file' ? Math.ceil(node.size / 512) : 0,
    atime: t,
    mtime: t,
    ctime: t,
  };
}

export function statfsOf(tree: LayerTree): LayerStatfs {
  const bsize = 4096;
  return {
    bsize,
    frsize: bsize,
    blocks: Math.min(0xffffffff, Math.ceil(tree.index.uncompressedSize / bsize)),
    bfree: 0,
    bavail: 0,
    files: Math.min(0xffffffff, tree.nodeCount),
    ffree: 0,
    favail: 0,
    fsid: 0,
    flag: 1, // ST_RDONLY
    namemax: 255,
  };
}

// Both names answer getxattr (overlay reads `user.` ones when mounted with userxattr), but only the trusted
// one is listed: overlay hides trusted.overlay.* from the merged view, while a listed user.* name would leak.
const OPAQUE_XATTRS: readonly string[] = ['trusted.overlay.opaque', 'user.overlay.opaque'];
const LISTED_OPAQUE_XATTRS: readonly string[] = ['trusted.overlay.opaque'];
const OPAQUE_VALUE = Buffer.from('y');

/** The value of xattr `name` of `node`, or undefined when it has none. */
export function xattrOf(node: LayerNode, name: string): Buffer | undefined {
  if (node.opaque && OPAQUE_XATTRS.includes(name)) return OPAQUE_VALUE;
  return node.xattrs.get(name);
}

/** The xattr names `node` lists. */
export function xattrNamesOf(node: LayerNode): string[] {
  const names = [...node.xattrs.keys()];
  if (node.opaque) names.push(...LISTED_OPAQUE_XATTRS);
  return names;
}
