// FUSE kernel protocol (linux/fuse.h, little-endian): opcodes, the flags Ferry negotiates, the request header
// and the request bodies a read-only layer needs. Pure functions over Buffers, no I/O; reply encoders live in
// protocol-replies.ts. Decoders return undefined for a body too short to hold its struct.

/** Protocol major; and the minor we implement: 7.31 is the first with everything below (max_pages, CACHE_DIR). */
export const FUSE_KERNEL_VERSION = 7;
export const FUSE_KERNEL_MINOR_VERSION = 31;

/** Bytes of each /dev/fuse read. The kernel refuses reads shorter than max(8192, 80 + max_write). */
export const REQUEST_BUFFER_BYTES = 16 * 1024;
/** max_write told to the kernel at INIT (layers are read-only; this only bounds the request buffer). */
export const MAX_WRITE_BYTES = 4096;
/** Largest READ the kernel sends (max_pages × 4 KiB); the mount's max_read option should match. */
export const MAX_READ_BYTES = 1024 * 1024;
export const MAX_PAGES = 256;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  OPEN: 14,
  READ: 15,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  GETXATTR: 22,
  LISTXATTR: 23,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  READDIRPLUS: 44,
} as const;

/** fuse_init_in/out flags. */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  INIT_EXT: 1 << 30,
} as const;

/** fuse_open_out.open_flags. */
export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_CACHE_DIR = 1 << 3;

/** Notification codes (fuse_out_header.error with unique 0). RESEND: Linux 6.9+, protocol 7.40. */
export const FUSE_NOTIFY_RESEND = 7;

export const IN_HEADER_BYTES = 40;
export const OUT_HEADER_BYTES = 16;

export interface InHeader {
  /** Whole request length including the header (and extensions). */
  readonly len: number;
  readonly opcode: number;
  readonly unique: bigint;
  /** Node ids above 2^53 lose precision; they match no node either way. */
  readonly nodeid: number;
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Extensions after the body, in 8-byte units. */
  readonly totalExtlen: number;
}

export function decodeInHeader(buf: Buffer): InHeader | undefined {
  if (buf.length < IN_HEADER_BYTES) return undefined;
  return {
    len: buf.readUInt32LE(0),
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: Number(buf.readBigUInt64LE(16)),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    totalExtlen: buf.readUInt16LE(36),
  };
}

export function encodeInHeader(h: Omit<InHeader, 'len'>, bodyBytes: number): Buffer {
  const b = Buffer.alloc(IN_HEADER_BYTES);
  b.writeUInt32LE(IN_HEADER_BYTES + bodyBytes, 0);
  b.writeUInt32LE(h.opcode, 4);
  b.writeBigUInt64LE(h.unique, 8);
  b.writeBigUInt64LE(BigInt(h.nodeid), 16);
  b.writeUInt32LE(h.uid, 24);
  b.writeUInt32LE(h.gid, 28);
  b.writeUInt32LE(h.pid, 32);
  b.writeUInt16LE(h.totalExtlen, 36);
  return b;
}

/** The request body: after the header, before any extensions; undefined if the lengths do not add up. */
export function requestBody(buf: Buffer, h: InHeader): Buffer | undefined {
  const end = h.len - h.totalExtlen * 8;
  if (h.len > buf.length || end < IN_HEADER_BYTES) return undefined;
  return buf.subarray(IN_HEADER_BYTES, end);
}

/** A u64 file handle as a JS number (ours stay below 2^53; others only key read-ahead state). */
function readU64(b: Buffer, at: number): number {
  return Number(b.readBigUInt64LE(at));
}

export interface InitIn {
  readonly major: number;
  readonly minor: number;
  readonly maxReadahead: number;
  readonly flags: number;
  /** Flags 32..63 (only meaningful when flags has INIT_EXT). */
  readonly flags2: number;
}

export function decodeInitIn(body: Buffer): InitIn | undefined {
  if (body.length < 8) return undefined;
  const major = body.readUInt32LE(0);
  const minor = body.readUInt32LE(4);
  // Kernels before 7.6 sent only major/minor.
  if (body.length < 16) return { major, minor, maxReadahead: 0, flags: 0, flags2: 0 };
  return {
    major,
    minor,
    maxReadahead: body.readUInt32LE(8),
    flags: body.readUInt32LE(12),
    flags2: body.length >= 20 ? body.readUInt32LE(16) : 0,
  };
}

/** A NUL-terminated name at `at` (LOOKUP, GETXATTR); undefined when the NUL is missing or the name empty. */
export function decodeName(body: Buffer, at = 0): string | undefined {
  const nul = body.indexOf(0, at);
  if (nul <= at) return undefined;
  return body.toString('utf8', at, nul);
}

/** fuse_read_in; READDIR and READDIRPLUS use it too (offset = the d_off to continue after). */
export interface ReadIn {
  readonly fh: number;
  readonly offset: number;
  readonly size: number;
  readonly readFlags: number;
  readonly flags: number;
}

export function decodeReadIn(body: Buffer): ReadIn | undefined {
  if (body.length < 24) return undefined; // FUSE_COMPAT_READ_IN_SIZE
  return {
    fh: readU64(body, 0),
    offset: readU64(body, 8),
    size: body.readUInt32LE(16),
    readFlags: body.readUInt32LE(20),
    flags: body.length >= 40 ? body.readUInt32LE(32) : 0,
  };
}

export interface OpenIn {
  readonly flags: number;
  readonly openFlags: number;
}

export function decodeOpenIn(body: Buffer): OpenIn | undefined {
  if (body.length < 8) return undefined;
  return { flags: body.readUInt32LE(0), openFlags: body.readUInt32LE(4) };
}

export interface GetxattrIn {
  /** Buffer size the caller offers; 0 asks for the value's size. */
  readonly size: number;
  readonly name: string;
}

export function decodeGetxattrIn(body: Buffer): GetxattrIn | undefined {
  if (body.length < 8) return undefined;
  const name = decodeName(body, 8);
  return name === undefined ? undefined : { size: body.readUInt32LE(0), name };
}

/** LISTXATTR sends a fuse_getxattr_in without a name. */
export function decodeListxattrIn(body: Buffer): { readonly size: number } | undefined {
  if (body.length < 8) return undefined;
  return { size: body.readUInt32LE(0) };
}

export function decodeAccessIn(body: Buffer): { readonly mask: number } | undefined {
  if (body.length < 8) return undefined;
  return { mask: body.readUInt32LE(0) };
}

export interface ReleaseIn {
  readonly fh: number;
  readonly flags: number;
  readonly releaseFlags: number;
}

export function decodeReleaseIn(body: Buffer): ReleaseIn | undefined {
  if (body.length < 16) return undefined;
  return { fh: readU64(body, 0), flags: body.readUInt32LE(8), releaseFlags: body.readUInt32LE(12) };
}

/** fuse_out_header + body: one complete reply frame. `error` is 0 or a negative errno. */
export function encodeReply(unique: bigint, error: number, body?: Buffer): Buffer {
  const n = body?.length ?? 0;
  const out = Buffer.allocUnsafe(OUT_HEADER_BYTES + n);
  out.writeUInt32LE(OUT_HEADER_BYTES + n, 0);
  out.writeInt32LE(error, 4);
  out.writeBigUInt64LE(unique, 8);
  body?.copy(out, OUT_HEADER_BYTES);
  return out;
}

/**
 * A reply as the kernel takes it in one write(2): one buffer, or pieces (header, body) written with writev so a
 * READ's data is never copied into a fresh header+body buffer (that copy halved 1 MiB read throughput).
 */
export type FuseReply = Buffer | readonly Buffer[];

/** Bodies at least this long are sent as a separate piece rather than copied behind the header. */
const SEPARATE_BODY_BYTES = 4096;

/** Like encodeReply, but a large body travels as its own piece. */
export function encodeReplyParts(unique: bigint, error: number, body: Buffer): FuseReply {
  if (body.length < SEPARATE_BODY_BYTES) return encodeReply(unique, error, body);
  const h = Buffer.allocUnsafe(OUT_HEADER_BYTES);
  h.writeUInt32LE(OUT_HEADER_BYTES + body.length, 0);
  h.writeInt32LE(error, 4);
  h.writeBigUInt64LE(unique, 8);
  return [h, body];
}

/** A reply whose body is `parts` in order: gathered by writev, never copied into one buffer when large. */
export function encodeReplyGather(unique: bigint, error: number, parts: readonly Buffer[]): FuseReply {
  if (parts.length === 1) return encodeReplyParts(unique, error, parts[0]!);
  let n = 0;
  for (const p of parts) n += p.length;
  if (n < SEPARATE_BODY_BYTES) return encodeReply(unique, error, Buffer.concat(parts, n));
  const h = Buffer.allocUnsafe(OUT_HEADER_BYTES);
  h.writeUInt32LE(OUT_HEADER_BYTES + n, 0);
  h.writeInt32LE(error, 4);
  h.writeBigUInt64LE(unique, 8);
  return [h, ...parts];
}

export function replyLength(r: FuseReply): number {
  if (Buffer.isBuffer(r)) return r.length;
  let n = 0;
  for (const p of r) n += p.length;
  return n;
}

/** The reply as one buffer (a copy when it is in pieces): for tests and logs, never on the read path. */
export function replyBytes(r: FuseReply): Buffer {
  return Buffer.isBuffer(r) ? r : Buffer.concat(r);
}

/** The first `n` bytes of a reply as one buffer (copied only when they straddle pieces); undefined if shorter. */
export function replyHead(r: FuseReply, n = OUT_HEADER_BYTES): Buffer | undefined {
  if (Buffer.isBuffer(r)) return r.length >= n ? r.subarray(0, n) : undefined;
  const first = r[0];
  if (first !== undefined && first.length >= n) return first.subarray(0, n);
  const head = Buffer.concat(r, Math.min(n, replyLength(r)));
  return head.length >= n ? head : undefined;
}

/** FUSE_NOTIFY_RESEND: asks the kernel to queue again every request read but not yet answered. */
export function encodeNotifyResend(): Buffer {
  const out = Buffer.alloc(OUT_HEADER_BYTES);
  out.writeUInt32LE(OUT_HEADER_BYTES, 0);
  out.writeInt32LE(FUSE_NOTIFY_RESEND, 4);
  return out; // unique 0 marks a notification
}
