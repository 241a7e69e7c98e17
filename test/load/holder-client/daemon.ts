// A stand-in daemon for the FUSE holder tests: mounts (or attaches to the inherited) `<mnt>` through the holder
// with HolderClient and serves one 8 MiB pattern file, /data, statelessly (fixed node ids, fh 0), so any
// successor can answer what its predecessor left. Prints "serving <fresh|attached> <pid>" once requests flow.
// Usage: node --import tsx daemon.ts <socket> <mnt>[,<mnt>...] [--direct] (--direct: no holder, read /dev/fuse in-process,
// for throughput comparisons). Env: HOLDER_STALL_FILE (while it exists, READs are answered 5 s late),
// HOLDER_DIRECT_IO=1 (FOPEN_DIRECT_IO: every read reaches the server, none from the page cache).
import { existsSync } from 'node:fs';
import { HolderClient } from '../../../src/fuse/holder/client.js';
import { silentLogger } from '../../../src/log.js';
import { mountFuseDevice, readRequests, writeToDevice } from '../../../src/fuse/raw/device.js';

const [socketPath, mnt, mode] = process.argv.slice(2) as [string, string, string | undefined];
const FILE_BYTES = 8 << 20;
const byteAt = (i: number): number => (i * 31 + (i >> 12)) & 0xff;
const DATA = Buffer.alloc(FILE_BYTES);
for (let i = 0; i < FILE_BYTES; i++) DATA[i] = byteAt(i);
const stallFile = process.env['HOLDER_STALL_FILE'];
const directIo = process.env['HOLDER_DIRECT_IO'] === '1';
const MOUNT_OPTIONS = ['allow_other', 'ro', 'default_permissions', 'max_read=1048576'];

function reply(req: Buffer, error: number, body?: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + (body?.length ?? 0), 0);
  h.writeInt32LE(error, 4);
  req.copy(h, 8, 8, 16);
  return body === undefined ? h : Buffer.concat([h, body]);
}

function attr(nodeid: number): Buffer {
  const a = Buffer.alloc(88);
  a.writeBigUInt64LE(BigInt(nodeid), 0);
  a.writeBigUInt64LE(BigInt(nodeid === 1 ? 0 : FILE_BYTES), 8);
  a.writeUInt32LE(nodeid === 1 ? 0o40755 : 0o100644, 60);
  a.writeUInt32LE(nodeid === 1 ? 2 : 1, 64);
  return a;
}

async function handle(req: Buffer): Promise<Buffer | undefined> {
  const opcode = req.readUInt32LE(4);
  const nodeid = Number(req.readBigUInt64LE(16));
  switch (opcode) {
    case 26: {
      const out = Buffer.alloc(64);
      out.writeUInt32LE(7, 0);
      out.writeUInt32LE(31, 4);
      out.writeUInt32LE(1 << 20, 8); // max_readahead
      out.writeUInt32LE(1 << 22, 12); // FUSE_MAX_PAGES
      out.writeUInt16LE(16, 16);
      out.writeUInt16LE(12, 18);
      out.writeUInt32LE(4096, 20); // max_write: the holder reads requests into 16 KiB
      out.writeUInt32LE(1, 24);
      out.writeUInt16LE(256, 28); // max_pages: 1 MiB reads
      return reply(req, 0, out);
    }
    case 1: {
      const name = req.toString('utf8', 40, req.indexOf(0, 40));
      if (nodeid !== 1 || name !== 'data') return reply(req, -2);
      const out = Buffer.alloc(40 + 88);
      out.writeBigUInt64LE(2n, 0);
      out.writeBigUInt64LE(3600n, 16);
      out.writeBigUInt64LE(3600n, 24);
      attr(2).copy(out, 40);
      return reply(req, 0, out);
    }
    case 3: {
      const out = Buffer.alloc(16 + 88);
      out.writeBigUInt64LE(3600n, 0);
      attr(nodeid).copy(out, 16);
      return reply(req, 0, out);
    }
    case 14:
    case 27: {
      const out = Buffer.alloc(16);
      if (opcode === 14 && directIo) out.writeUInt32LE(1, 8); // FOPEN_DIRECT_IO
      return reply(req, 0, out);
    }
    case 15: {
      if (stallFile !== undefined && existsSync(stallFile)) await new Promise((r) => setTimeout(r, 5000));
      const offset = Number(req.readBigUInt64LE(48));
      const size = req.readUInt32LE(56);
      const len = Math.max(0, Math.min(size, FILE_BYTES - offset));
      return reply(req, 0, DATA.subarray(offset, offset + len));
    }
    case 18:
    case 29:
    case 25:
      return reply(req, 0);
    case 2:
    case 42:
    case 36:
      return undefined;
    default:
      return reply(req, -38);
  }
}

if (mode === '--direct') {
  const fd = await mountFuseDevice({
    mountpoint: mnt,
    fsname: 'holder-test',
    subtype: 'ferry',
    options: MOUNT_OPTIONS,
  });
  console.log(`serving direct ${process.pid}`);
  await readRequests(fd, (req) => {
    void handle(req).then((r) => r !== undefined && writeToDevice(fd, r));
  });
} else {
  const client = await HolderClient.connect({ socketPath, log: silentLogger() });
  let attached = 0;
  for (const m of mnt.split(',')) {
    const inherited = client.inherited.some((h) => h.id === m);
    const session = inherited
      ? client.attach(m)
      : await client.mount({
          id: m,
          mountpoint: m,
          fsname: 'holder-test',
          subtype: 'ferry',
          options: MOUNT_OPTIONS,
          meta: { role: 'test' },
        });
    if (inherited) attached++;
    session.serve({ handle });
  }
  console.log(`serving ${attached > 0 ? 'attached' : 'fresh'} ${process.pid} holder=${client.holderPid}`);
  client.onClose(() => process.exit(3));
  process.on('SIGTERM', () => void client.close().then(() => process.exit(0)));
}
