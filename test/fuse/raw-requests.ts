// Test driver for the raw FUSE server: builds request frames as the kernel would and decodes the replies
// (entry/attr outs, dirent pages), so unit tests speak the protocol without a mount.
import type { RawLayerServer } from '../../src/fuse/raw/layer-server.js';
import { Opcode, encodeInHeader, replyBytes } from '../../src/fuse/raw/protocol.js';

export interface Attr {
  ino: number;
  size: number;
  blocks: number;
  mtimeSec: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
}

export interface Entry {
  nodeid: number;
  entryValidSec: number;
  attrValidSec: number;
  attr: Attr;
}

export interface Dirent {
  ino: number;
  off: number;
  type: number;
  name: string;
  entry?: Entry;
}

export interface Reply {
  error: number;
  body: Buffer;
}

export function decodeAttr(b: Buffer, at: number): Attr {
  return {
    ino: Number(b.readBigUInt64LE(at)),
    size: Number(b.readBigUInt64LE(at + 8)),
    blocks: Number(b.readBigUInt64LE(at + 16)),
    mtimeSec: Number(b.readBigUInt64LE(at + 32)),
    mode: b.readUInt32LE(at + 60),
    nlink: b.readUInt32LE(at + 64),
    uid: b.readUInt32LE(at + 68),
    gid: b.readUInt32LE(at + 72),
    rdev: b.readUInt32LE(at + 76),
  };
}

export function decodeEntry(b: Buffer, at = 0): Entry {
  return {
    nodeid: Number(b.readBigUInt64LE(at)),
    entryValidSec: Number(b.readBigUInt64LE(at + 16)),
    attrValidSec: Number(b.readBigUInt64LE(at + 24)),
    attr: decodeAttr(b, at + 40),
  };
}

export function decodeDirents(b: Buffer, plus: boolean): Dirent[] {
  const out: Dirent[] = [];
  let at = 0;
  while (at < b.length) {
    const entry = plus ? decodeEntry(b, at) : undefined;
    const d = plus ? at + 128 : at;
    const namelen = b.readUInt32LE(d + 16);
    out.push({
      ino: Number(b.readBigUInt64LE(d)),
      off: Number(b.readBigUInt64LE(d + 8)),
      type: b.readUInt32LE(d + 20),
      name: b.toString('utf8', d + 24, d + 24 + namelen),
      ...(entry !== undefined ? { entry } : {}),
    });
    at = (d + 24 + namelen + 7) & ~7;
  }
  return out;
}

/** Sends requests to one server with increasing uniques; checks each reply's header. */
export class RawClient {
  private unique = 100n;
  constructor(readonly server: RawLayerServer) {}

  async send(opcode: number, nodeid: number, body: Buffer = Buffer.alloc(0)): Promise<Reply> {
    const unique = this.unique++;
    const head = encodeInHeader(
      { opcode, nodeid, unique, uid: 0, gid: 0, pid: 1, totalExtlen: 0 },
      body.length,
    );
    const answer = await this.server.handle(Buffer.concat([head, body]));
    if (answer === undefined) throw new Error(`no reply to opcode ${opcode}`);
    const reply = replyBytes(answer);
    if (reply.readUInt32LE(0) !== reply.length || reply.readBigUInt64LE(8) !== unique)
      throw new Error(`bad reply header for opcode ${opcode}`);
    return { error: reply.readInt32LE(4), body: reply.subarray(16) };
  }

  async lookup(parent: number, name: string): Promise<Reply> {
    return this.send(Opcode.LOOKUP, parent, Buffer.from(`${name}\0`));
  }

  /** Walks `path` from the root by LOOKUPs; the final entry. */
  async walk(path: string): Promise<Entry> {
    let node = 1;
    let entry: Entry | undefined;
    for (const part of path.split('/')) {
      const r = await this.lookup(node, part);
      if (r.error !== 0) throw new Error(`lookup ${part} of ${path}: ${r.error}`);
      entry = decodeEntry(r.body);
      node = entry.nodeid;
    }
    if (entry === undefined) throw new Error('empty path');
    return entry;
  }

  async open(nodeid: number, flags = 0): Promise<Reply & { fh: number }> {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(flags, 0);
    const r = await this.send(Opcode.OPEN, nodeid, b);
    return { ...r, fh: r.error === 0 ? Number(r.body.readBigUInt64LE(0)) : 0 };
  }

  /** READ / READDIR / READDIRPLUS (all take fuse_read_in). */
  async read(opcode: number, nodeid: number, fh: number, offset: number, size: number): Promise<Reply> {
    const b = Buffer.alloc(40);
    b.writeBigUInt64LE(BigInt(fh), 0);
    b.writeBigUInt64LE(BigInt(offset), 8);
    b.writeUInt32LE(size, 16);
    return this.send(opcode, nodeid, b);
  }

  async release(nodeid: number, fh: number): Promise<Reply> {
    const b = Buffer.alloc(24);
    b.writeBigUInt64LE(BigInt(fh), 0);
    return this.send(Opcode.RELEASE, nodeid, b);
  }

  async getxattr(nodeid: number, name: string, size: number): Promise<Reply> {
    const b = Buffer.concat([Buffer.alloc(8), Buffer.from(`${name}\0`)]);
    b.writeUInt32LE(size, 0);
    return this.send(Opcode.GETXATTR, nodeid, b);
  }

  async listxattr(nodeid: number, size: number): Promise<Reply> {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(size, 0);
    return this.send(Opcode.LISTXATTR, nodeid, b);
  }

  /** Every entry of a directory, page by page, as the kernel reads it. */
  async listAll(nodeid: number, plus: boolean, pageBytes = 4096, from = 0): Promise<Dirent[]> {
    const all: Dirent[] = [];
    let offset = from;
    for (;;) {
      const r = await this.read(plus ? Opcode.READDIRPLUS : Opcode.READDIR, nodeid, 0, offset, pageBytes);
      if (r.error !== 0) throw new Error(`readdir ${nodeid}: ${r.error}`);
      const page = decodeDirents(r.body, plus);
      if (page.length === 0) return all;
      all.push(...page);
      offset = page.at(-1)!.off;
    }
  }
}
