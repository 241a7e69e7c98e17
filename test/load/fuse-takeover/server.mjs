// Restart prototype, the replaceable part: a stateless FUSE server on an inherited /dev/fuse descriptor (fd 3).
// Node ids are fixed (1 = root, 2 = /data), file handles carry nothing, so a new process can answer any
// request the kernel sends without knowing what its predecessor did. A takeover first asks the kernel to
// resend the requests the dead server had read but not answered (FUSE_NOTIFY_RESEND, Linux 6.9+).
// Blocking reads of /dev/fuse happen on worker threads, never on the event loop.
import { existsSync, readSync, writeSync } from 'node:fs';
import { Worker, isMainThread } from 'node:worker_threads';

const FD = 3;
const FILE_BYTES = 8 << 20;
/** Byte i of /data: a pattern any reader can check without a reference copy. */
const byteAt = (i) => (i * 31 + (i >> 12)) & 0xff;

if (isMainThread) {
  const takeover = process.argv[2] === 'takeover';
  if (takeover) {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16, 0);
    h.writeInt32LE(7, 4); // FUSE_NOTIFY_RESEND; unique 0 = a notification
    try {
      writeSync(FD, h);
    } catch (e) {
      console.error(`resend not supported: ${e.code}`);
    }
  }
  for (let i = 0; i < 4; i++) new Worker(new URL(import.meta.url));
} else {
  const buf = Buffer.alloc((1 << 20) + 8192);
  const reply = (unique, error, body) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16 + (body?.length ?? 0), 0);
    h.writeInt32LE(error, 4);
    h.writeBigUInt64LE(unique, 8);
    try {
      writeSync(FD, body === undefined ? h : Buffer.concat([h, body]));
    } catch {
      /* the request was interrupted */
    }
  };
  const attr = (nodeid) => {
    const a = Buffer.alloc(88);
    a.writeBigUInt64LE(BigInt(nodeid), 0);
    a.writeBigUInt64LE(BigInt(nodeid === 1 ? 0 : FILE_BYTES), 8);
    a.writeUInt32LE(nodeid === 1 ? 0o40755 : 0o100644, 60);
    a.writeUInt32LE(nodeid === 1 ? 2 : 1, 64);
    return a;
  };
  for (;;) {
    try {
      readSync(FD, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EINTR' || e.code === 'EAGAIN') continue;
      if (e.code === 'ENODEV') process.exit(0); // unmounted
      throw e;
    }
    const opcode = buf.readUInt32LE(4);
    const unique = buf.readBigUInt64LE(8);
    const nodeid = Number(buf.readBigUInt64LE(16));
    switch (opcode) {
      case 26: {
        // INIT (only a fresh mount sees it)
        const out = Buffer.alloc(64);
        out.writeUInt32LE(7, 0);
        out.writeUInt32LE(31, 4);
        out.writeUInt32LE(1 << 20, 8);
        out.writeUInt16LE(16, 16);
        out.writeUInt16LE(12, 18);
        out.writeUInt32LE(1 << 20, 20);
        out.writeUInt32LE(1, 24);
        reply(unique, 0, out);
        break;
      }
      case 1: {
        // LOOKUP: name after the 40-byte header
        const name = buf.toString('utf8', 40, buf.indexOf(0, 40));
        if (nodeid !== 1 || name !== 'data') {
          reply(unique, -2);
          break;
        }
        const out = Buffer.alloc(40 + 88);
        out.writeBigUInt64LE(2n, 0); // nodeid
        out.writeBigUInt64LE(3600n, 16); // entry_valid
        out.writeBigUInt64LE(3600n, 24); // attr_valid
        attr(2).copy(out, 40);
        reply(unique, 0, out);
        break;
      }
      case 3: {
        // GETATTR
        const out = Buffer.alloc(16 + 88);
        out.writeBigUInt64LE(3600n, 0);
        attr(nodeid).copy(out, 16);
        reply(unique, 0, out);
        break;
      }
      case 14: // OPEN
      case 27: // OPENDIR
        reply(unique, 0, Buffer.alloc(16)); // fh 0, no flags: nothing to remember
        break;
      case 15: {
        // READ: fh u64, offset u64, size u32 after the header
        // Test hook: while this file exists, reads are held 5 s (a slow fetch in flight when the server dies).
        if (process.env.PROTO_STALL_FILE !== undefined && existsSync(process.env.PROTO_STALL_FILE))
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5000);
        const offset = Number(buf.readBigUInt64LE(48));
        const size = buf.readUInt32LE(56);
        const len = Math.max(0, Math.min(size, FILE_BYTES - offset));
        const out = Buffer.allocUnsafe(len);
        for (let i = 0; i < len; i++) out[i] = byteAt(offset + i);
        reply(unique, 0, out);
        break;
      }
      case 18: // RELEASE
      case 29: // RELEASEDIR
      case 25: // FLUSH
        reply(unique, 0);
        break;
      case 2: // FORGET: no reply
      case 42: // BATCH_FORGET
      case 36: // INTERRUPT: the read is answered anyway
        break;
      default:
        reply(unique, -38); // ENOSYS
    }
  }
}
