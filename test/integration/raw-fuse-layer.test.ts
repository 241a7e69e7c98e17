// Real mounts served by the raw FUSE protocol server (mount -o fd=3, no libfuse): a corpus layer equals GNU tar's
// extraction of it, a 32 MiB file read with O_DIRECT arrives as 1 MiB READs with the right bytes, an overlay of
// three raw-mounted layers shows the OCI-merged view, and a successor server takes over a live connection.
// Every read of a mount happens in a child process.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeDevice,
  mountFuseDevice,
  readRequests,
  unmountFuse,
  writeToDevice,
} from '../../src/fuse/raw/device.js';
import { createRawLayerServer, type RawLayerServer } from '../../src/fuse/raw/layer-server.js';
import { MAX_READ_BYTES, Opcode, decodeInHeader, encodeNotifyResend } from '../../src/fuse/raw/protocol.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { deserializeIndex, serializeIndex } from '../../src/index/serialize.js';
import { LayerReader } from '../../src/layer/layer-reader.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { silentLogger } from '../../src/log.js';
import { fileSha256, makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { treeManifest } from '../helpers/ferry-cli.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { ociMerge } from '../helpers/oci-merge.js';
import { mountTestLayer, must, requireRootAndFuse, run, safeUnmount, tempDir } from '../fuse/fuse-harness.js';
import { fuseTimings } from '../helpers/fuse-timings.js';

requireRootAndFuse();

const MiB = 1024 * 1024;
const BIG = 'usr/lib/big-random.bin';

interface RawMount {
  mountpoint: string;
  /** The server answering now (a test swaps in a successor). */
  server: RawLayerServer;
  /** While set, requests are taken and never answered, as by a server that died holding them. */
  dead: boolean;
  dropped: number;
  /** Sizes of the READ requests the kernel sent. */
  readSizes: number[];
  opcodes: Map<number, number>;
  loop: Promise<void>;
  fd: number;
}

function serverFor(index: LayerIndex, tar: Buffer): RawLayerServer {
  const source = {
    fetch: (q: { index: LayerIndex; chunk: number }) => {
      const c = q.index.chunks[q.chunk]!;
      return Promise.resolve(tar.subarray(c.compressedStart + c.skip, c.compressedStart + c.skip + c.size));
    },
  };
  return createRawLayerServer({
    tree: LayerTree.fromIndex(index),
    reader: new LayerReader({ index, source }),
    log: silentLogger(),
    timings: fuseTimings({ attrTimeoutMs: 1000, entryTimeoutMs: 1000, negativeTimeoutMs: 1000 }),
  });
}

async function mountRaw(index: LayerIndex, tar: Buffer, mountpoint: string): Promise<RawMount> {
  mkdirSync(mountpoint, { recursive: true });
  const server = serverFor(index, tar);
  const fd = await mountFuseDevice({
    mountpoint,
    fsname: 'ferry-test',
    subtype: 'ferry',
    options: ['ro', 'allow_other', 'default_permissions', 'suid', 'dev', `max_read=${MAX_READ_BYTES}`],
  });
  const m: RawMount = {
    mountpoint,
    server,
    dead: false,
    dropped: 0,
    readSizes: [],
    opcodes: new Map(),
    fd,
    loop: Promise.resolve(),
  };
  m.loop = readRequests(fd, (req) => {
    const h = decodeInHeader(req);
    if (h !== undefined) {
      m.opcodes.set(h.opcode, (m.opcodes.get(h.opcode) ?? 0) + 1);
      if (h.opcode === Opcode.READ) m.readSizes.push(req.readUInt32LE(40 + 16));
    }
    if (m.dead) {
      m.dropped++;
      return;
    }
    void m.server.handle(req).then((reply) => {
      if (reply !== undefined) writeToDevice(fd, reply);
    });
  });
  return m;
}

async function unmountRaw(m: RawMount | undefined): Promise<void> {
  if (m === undefined) return;
  await unmountFuse(m.mountpoint).catch(() => undefined);
  await m.loop; // ENODEV once the kernel ends the connection
  m.server.close();
  closeDevice(m.fd);
}

/** Buffered sequential read throughput of `file` from a cold page cache (fadvise DONTNEED), in a child. */
async function bufferedMBps(file: string): Promise<number> {
  const script = [
    'import os, sys, time',
    'fd = os.open(sys.argv[1], os.O_RDONLY)',
    'os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)',
    't = time.monotonic(); n = 0',
    'while True:',
    '    b = os.read(fd, 1 << 20)',
    '    if not b: break',
    '    n += len(b)',
    'print(n / (time.monotonic() - t) / 1e6)',
  ].join('\n');
  return Number(await must('python3', ['-c', script, file]));
}

const dir = tempDir('ferry-rawfuse-');
let corpus: CorpusLayer[];
const indexes: LayerIndex[] = [];
const mounts: RawMount[] = [];
let overlay: string | undefined;

beforeAll(async () => {
  corpus = makeCorpus(join(dir.path, 'src'), { smallFiles: 1000, bigFileBytes: 32 * MiB });
  for (const layer of corpus) {
    const blob = new MemoryBlobReader(layer.tar);
    indexes.push(
      await buildIndexFromStream({
        layerDigest: blob.digest,
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        blob,
      }),
    );
  }
  for (let i = 0; i < corpus.length; i++)
    mounts.push(await mountRaw(indexes[i]!, corpus[i]!.tar, join(dir.path, `layer${i}`)));
}, 180_000);

afterAll(async () => {
  if (overlay !== undefined) await run('umount', ['-l', overlay]);
  for (const m of mounts) await unmountRaw(m);
  dir.remove();
});

describe('a layer served by the raw FUSE server', () => {
  it('equals GNU tar extraction of the same layer', async () => {
    const ref = join(dir.path, 'ref0');
    mkdirSync(ref);
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--same-owner', '-p', '-xf', '-', '-C', ref], {
      input: corpus[0]!.tar,
      maxBuffer: 1 << 30,
    });
    const want = await treeManifest(ref);
    const got = await treeManifest(mounts[0]!.mountpoint);
    expect(got.entries).toEqual(want.entries);
    expect(got.hardlinks).toEqual(want.hardlinks);
    expect(got.hardlinks).toContain('usr/bin/tool=usr/bin/tool-hardlink');
    expect(mounts[0]!.opcodes.get(Opcode.READDIRPLUS) ?? 0).toBeGreaterThan(0);
    expect(mounts[0]!.server.errors.failures).toBe(0);
  });

  it('reads a 32 MiB file with dd iflag=direct as 1 MiB READs, bytes intact', async () => {
    const m = mounts[0]!;
    m.readSizes.length = 0;
    const file = join(m.mountpoint, BIG);
    const dd = await run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']);
    expect(dd.code).toBe(0);
    expect(dd.stderr).toMatch(/33554432 bytes/);
    expect(m.readSizes.length).toBe(32);
    expect(m.readSizes.every((s) => s === MiB)).toBe(true);
    console.log(`raw FUSE dd bs=1M iflag=direct: ${dd.stderr.trim().split('\n').at(-1)}`);
    console.log(`raw FUSE buffered cold read: ${(await bufferedMBps(file)).toFixed(0)} MB/s`);
    const sum = (await must('sha256sum', [file])).split(' ')[0];
    expect(sum).toBe(fileSha256(join(corpus[0]!.dir, BIG)));
  });

  it('the same file through fuse-native (for comparison) reads the same bytes', async () => {
    const mnt = join(dir.path, 'native');
    const native = await mountTestLayer(indexes[0]!, new MemoryBlobReader(corpus[0]!.tar), mnt);
    try {
      const dd = await run('dd', [`if=${join(mnt, BIG)}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']);
      expect(dd.code).toBe(0);
      console.log(`fuse-native dd bs=1M iflag=direct: ${dd.stderr.trim().split('\n').at(-1)}`);
      console.log(`fuse-native buffered cold read: ${(await bufferedMBps(join(mnt, BIG))).toFixed(0)} MB/s`);
      expect((await must('sha256sum', [join(mnt, BIG)])).split(' ')[0]).toBe(
        fileSha256(join(corpus[0]!.dir, BIG)),
      );
    } finally {
      await safeUnmount(native, mnt);
    }
  });

  it('overlays three raw-mounted layers into the OCI-merged view (whiteouts, opaque dirs)', async () => {
    const ref = join(dir.path, 'merged-ref');
    ociMerge(
      corpus.map((l) => l.tar),
      ref,
    );
    overlay = join(dir.path, 'merged');
    mkdirSync(overlay);
    const lower = [...mounts].reverse().map((m) => m.mountpoint);
    const r = await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower.join(':')}`, overlay]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const want = await treeManifest(ref);
    const got = await treeManifest(overlay);
    expect(got.entries).toEqual(want.entries);
    expect(got.hardlinks).toEqual(want.hardlinks);
    expect(got.entries['etc/removed.conf']).toBeUndefined();
    expect(got.entries['opt/app/old']).toBeUndefined();
    expect(got.entries['opt/app/new.txt']).toBeDefined();
    expect(got.entries['usr/share/more']).toBeUndefined();
    expect((await must('cat', [join(overlay, 'etc/replaced.conf')])).trim()).toBe('version 2');
    for (const m of mounts) expect(m.server.errors.failures).toBe(0);
  });
  it('a successor server takes over the connection: resent reads, a predecessor fh, node ids unchanged', async () => {
    const m = mounts[0]!;
    const file = join(m.mountpoint, BIG);
    const want = readFileSync(join(corpus[0]!.dir, BIG));
    // The reader keeps one open file across the takeover: 4 KiB at 0, then (on a line from us) 1 MiB at 16 MiB.
    const script = [
      'import hashlib, os, sys',
      'f = open(sys.argv[1], "rb", buffering=0)',
      'print(hashlib.sha256(f.read(4096)).hexdigest(), flush=True)',
      'sys.stdin.readline()',
      'os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)', // earlier tests left it in the page cache
      'f.seek(16 << 20)',
      'print(hashlib.sha256(f.read(1 << 20)).hexdigest(), flush=True)',
    ].join('\n');
    const child = spawn('python3', ['-c', script, file], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let waiting: (() => void) | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      lines.push(...d.split('\n').filter(Boolean));
      waiting?.();
    });
    const lineCount = (n: number): Promise<void> =>
      new Promise((resolve) => {
        waiting = () => {
          if (lines.length >= n) resolve();
        };
        waiting();
      });
    const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    try {
      await lineCount(1);
      expect(lines[0]).toBe(sha(want.subarray(0, 4096)));

      m.dead = true; // the predecessor "dies" holding whatever it reads next
      child.stdin.write('go\n');
      for (let i = 0; i < 200 && m.dropped === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(m.dropped).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 100));
      expect(lines).toHaveLength(1); // the reader is stuck on a request no one will answer

      const reloaded = deserializeIndex(serializeIndex(indexes[0]!), indexes[0]!.layerDigest);
      const successor = serverFor(reloaded, corpus[0]!.tar);
      successor.adopt(undefined);
      const predecessor = m.server;
      m.server = successor;
      m.dead = false;
      expect(writeToDevice(m.fd, encodeNotifyResend())).toBe(true);
      predecessor.close();

      await lineCount(2);
      expect(lines[1]).toBe(sha(want.subarray(16 * MiB, 17 * MiB)));
      expect(successor.openHandles()).toBeGreaterThan(0); // it read through the predecessor's handle
      expect((await must('stat', ['-c', '%i', file])).trim()).toBe(
        String(LayerTree.fromIndex(reloaded).lookup(BIG)!.ino),
      );
      expect((await must('ls', [join(m.mountpoint, 'usr/bin')])).split('\n')).toContain('tool-symlink');
      expect(successor.errors.failures).toBe(0);
    } finally {
      child.kill();
    }
  });
});
