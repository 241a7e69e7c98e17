// Stat and statfs shapes for fuse-native from LayerNodes: type bits, glibc rdev encoding, block counts.
import type { FuseStat, FuseStatfs } from 'fuse-native';
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

/** glibc makedev for the 32-bit rdev fuse-native passes (major bits above 12 do not fit). */
export function makeDev(major: number, minor: number): number {
  return (((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12)) >>> 0;
}

export function modeOf(node: LayerNode): number {
  return TYPE_BITS[node.type] | (node.mode & 0o7777);
}

export function statOf(node: LayerNode): FuseStat {
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

export function statfsOf(tree: LayerTree): FuseStatfs {
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
