// Encoders for FUSE reply bodies (linux/fuse.h structs, little-endian, 8-byte aligned): fuse_attr and the
// replies that embed it, init/open/statfs/getxattr outs, and dirent / direntplus listings.
import { S_IFMT, type LayerStatfs, type NodeStat } from '../attrs.js';

export const ATTR_BYTES = 88;
export const ENTRY_OUT_BYTES = 40 + ATTR_BYTES;
export const ATTR_OUT_BYTES = 16 + ATTR_BYTES;
export const OPEN_OUT_BYTES = 16;
export const INIT_OUT_BYTES = 64;
export const STATFS_OUT_BYTES = 80;
export const GETXATTR_OUT_BYTES = 8;
export const DIRENT_HEADER_BYTES = 24;

const align8 = (n: number): number => (n + 7) & ~7;

function writeTime(out: Buffer, secAt: number, nsecAt: number, ms: number): void {
  const sec = Math.floor(ms / 1000);
  out.writeBigUInt64LE(BigInt(sec), secAt);
  out.writeUInt32LE(Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6)), nsecAt);
}

/** struct fuse_attr (88 bytes) at `at`. */
export function writeAttr(out: Buffer, at: number, s: NodeStat): void {
  out.writeBigUInt64LE(BigInt(s.ino), at);
  out.writeBigUInt64LE(BigInt(s.size), at + 8);
  out.writeBigUInt64LE(BigInt(s.blocks), at + 16);
  writeTime(out, at + 24, at + 48, s.atime);
  writeTime(out, at + 32, at + 52, s.mtime);
  writeTime(out, at + 40, at + 56, s.ctime);
  out.writeUInt32LE(s.mode, at + 60);
  out.writeUInt32LE(s.nlink, at + 64);
  out.writeUInt32LE(s.uid, at + 68);
  out.writeUInt32LE(s.gid, at + 72);
  out.writeUInt32LE(s.rdev, at + 76);
  out.writeUInt32LE(s.blksize, at + 80);
  out.writeUInt32LE(0, at + 84); // flags: no submount, no DAX
}

export interface EntryTimeouts {
  entryValidSec: number;
  attrValidSec: number;
}

function writeValid(out: Buffer, secAt: number, nsecAt: number, sec: number): void {
  const whole = Math.max(0, Math.floor(sec));
  out.writeBigUInt64LE(BigInt(whole), secAt);
  out.writeUInt32LE(Math.min(999_999_999, Math.round((Math.max(0, sec) - whole) * 1e9)), nsecAt);
}

/** struct fuse_entry_out (128 bytes) at `at`; `stat` undefined with nodeid 0 is a cacheable negative entry. */
export function writeEntryOut(
  out: Buffer,
  at: number,
  nodeid: number,
  t: EntryTimeouts,
  stat: NodeStat | undefined,
): void {
  out.fill(0, at, at + ENTRY_OUT_BYTES);
  out.writeBigUInt64LE(BigInt(nodeid), at);
  // generation (at + 8) stays 0: node ids are never reused for another file of the layer.
  writeValid(out, at + 16, at + 32, t.entryValidSec);
  writeValid(out, at + 24, at + 36, t.attrValidSec);
  if (stat !== undefined) writeAttr(out, at + 40, stat);
}

export function encodeEntryOut(nodeid: number, t: EntryTimeouts, stat: NodeStat | undefined): Buffer {
  const out = Buffer.alloc(ENTRY_OUT_BYTES);
  writeEntryOut(out, 0, nodeid, t, stat);
  return out;
}

/** struct fuse_attr_out (104 bytes). */
export function encodeAttrOut(attrValidSec: number, stat: NodeStat): Buffer {
  const out = Buffer.alloc(ATTR_OUT_BYTES);
  writeValid(out, 0, 8, attrValidSec);
  writeAttr(out, 16, stat);
  return out;
}

/** struct fuse_open_out (16 bytes). */
export function encodeOpenOut(fh: number, openFlags: number): Buffer {
  const out = Buffer.alloc(OPEN_OUT_BYTES);
  out.writeBigUInt64LE(BigInt(fh), 0);
  out.writeUInt32LE(openFlags, 8);
  return out;
}

export interface InitOut {
  major: number;
  minor: number;
  maxReadaheadBytes: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWriteBytes: number;
  /** Timestamp granularity in ns. */
  timeGranNs: number;
  maxPages: number;
}

/** struct fuse_init_out (64 bytes). */
export function encodeInitOut(o: InitOut): Buffer {
  const out = Buffer.alloc(INIT_OUT_BYTES);
  out.writeUInt32LE(o.major, 0);
  out.writeUInt32LE(o.minor, 4);
  out.writeUInt32LE(o.maxReadaheadBytes, 8);
  out.writeUInt32LE(o.flags >>> 0, 12);
  out.writeUInt16LE(o.maxBackground, 16);
  out.writeUInt16LE(o.congestionThreshold, 18);
  out.writeUInt32LE(o.maxWriteBytes, 20);
  out.writeUInt32LE(o.timeGranNs, 24);
  out.writeUInt16LE(o.maxPages, 28);
  // map_alignment (30), flags2 (32) and unused[7] stay 0.
  return out;
}

/** struct fuse_statfs_out = fuse_kstatfs (80 bytes). */
export function encodeStatfsOut(s: LayerStatfs): Buffer {
  const out = Buffer.alloc(STATFS_OUT_BYTES);
  out.writeBigUInt64LE(BigInt(s.blocks), 0);
  out.writeBigUInt64LE(BigInt(s.bfree), 8);
  out.writeBigUInt64LE(BigInt(s.bavail), 16);
  out.writeBigUInt64LE(BigInt(s.files), 24);
  out.writeBigUInt64LE(BigInt(s.ffree), 32);
  out.writeUInt32LE(s.bsize, 40);
  out.writeUInt32LE(s.namemax, 44);
  out.writeUInt32LE(s.frsize, 48);
  return out;
}

/** struct fuse_getxattr_out (8 bytes): the answer to a size probe (size 0) of GETXATTR or LISTXATTR. */
export function encodeGetxattrOut(sizeBytes: number): Buffer {
  const out = Buffer.alloc(GETXATTR_OUT_BYTES);
  out.writeUInt32LE(sizeBytes, 0);
  return out;
}

/** DT_* of a mode (what READDIR's fuse_dirent.type carries). */
export function direntType(mode: number): number {
  return (mode & S_IFMT) >>> 12;
}

export function direntBytes(nameBytes: number, plus: boolean): number {
  return align8((plus ? ENTRY_OUT_BYTES : 0) + DIRENT_HEADER_BYTES + nameBytes);
}

/** Fills one READDIR(PLUS) reply buffer, refusing an entry that would not fit in the kernel's `size`. */
export class DirentWriter {
  private readonly buf: Buffer;
  private used = 0;

  constructor(
    maxBytes: number,
    private readonly plus: boolean,
  ) {
    this.buf = Buffer.alloc(Math.max(0, maxBytes));
  }

  /**
   * Appends one entry; false (and nothing written) when it does not fit. `off` is the cookie the kernel
   * passes back to continue after this entry; `stat` is required for READDIRPLUS.
   */
  add(name: string, off: number, stat: NodeStat, t?: EntryTimeouts): boolean {
    const nameBytes = Buffer.byteLength(name);
    const size = direntBytes(nameBytes, this.plus);
    if (this.used + size > this.buf.length) return false;
    let at = this.used;
    if (this.plus) {
      writeEntryOut(this.buf, at, stat.ino, t ?? { entryValidSec: 0, attrValidSec: 0 }, stat);
      at += ENTRY_OUT_BYTES;
    }
    this.buf.writeBigUInt64LE(BigInt(stat.ino), at);
    this.buf.writeBigUInt64LE(BigInt(off), at + 8);
    this.buf.writeUInt32LE(nameBytes, at + 16);
    this.buf.writeUInt32LE(direntType(stat.mode), at + 20);
    this.buf.write(name, at + DIRENT_HEADER_BYTES, 'utf8');
    this.used += size; // padding bytes were zeroed by Buffer.alloc
    return true;
  }

  get bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}
