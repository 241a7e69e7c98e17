// Round trips: blobs written like stargz's Go writer, indexed by buildEstargzIndex, every file read back and verified.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeChunk } from '../../src/codec/decode-chunk.js';
import { sha256 } from '../../src/image/digest.js';
import { estargzPrefetchEnd, isEstargz, loadEstargz } from '../../src/index/estargz.js';
import { deserializeIndex, serializeIndex } from '../../src/index/serialize.js';
import { writeEstargz, type EstargzInputEntry } from '../helpers/estargz-writer.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import {
  MEDIA_TYPE,
  decodeChunkForTest,
  entryAt,
  expectRoundTrip,
  readViaIndex,
  writeAndIndex,
} from './estargz-test-utils.js';

const MiB = 1024 * 1024;

describe('buildEstargzIndex round trips', () => {
  it('maps dirs, symlinks, hardlinks, devices, fifos, xattrs, modes and mtimes', async () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const entries: EstargzInputEntry[] = [
      { path: './etc', type: 'dir', mode: 0o755, uid: 1, gid: 2 },
      { path: './etc/passwd', type: 'file', content: Buffer.from('root:x:0:0\n'), mode: 0o644 },
      { path: './bin/', type: 'dir', mode: 0o1777 },
      {
        path: './bin/ping',
        type: 'file',
        content: randomBytes(3000),
        mode: 0o4755,
        xattrs: { 'security.capability': cap },
      },
      { path: './bin/sh', type: 'symlink', linkTarget: '/bin/busybox' },
      { path: './bin/ping2', type: 'hardlink', linkTarget: './bin/ping' },
      { path: './bin/ping3', type: 'hardlink', linkTarget: 'bin/ping2' },
      { path: './dev/null', type: 'char', devMajor: 1, devMinor: 3, mode: 0o666 },
      { path: './dev/sda', type: 'block', devMajor: 8, devMinor: 0 },
      { path: './run/fifo', type: 'fifo', mode: 0o600, mtime: new Date('2020-02-02T02:02:02Z') },
      { path: './empty', type: 'file' },
    ];
    const b = await writeAndIndex(entries);
    expectRoundTrip(b, entries);
    const idx = b.index;
    expect(idx.format).toBe('estargz');
    expect(idx.codec).toBe('gzip-member');
    expect(idx.compressedSize).toBe(b.blob.length);
    expect(idx.checkpoints).toEqual([]);
    expect(idx.entries.map((e) => e.path)).toEqual([
      '',
      'bin',
      'bin/ping',
      'bin/ping2',
      'bin/ping3',
      'bin/sh',
      'dev',
      'dev/null',
      'dev/sda',
      'empty',
      'etc',
      'etc/passwd',
      'run',
      'run/fifo',
    ]);
    expect(entryAt(idx, 'etc')).toMatchObject({ type: 'dir', mode: 0o755, uid: 1, gid: 2 });
    expect(entryAt(idx, 'bin')).toMatchObject({ type: 'dir', mode: 0o1777 });
    expect(entryAt(idx, 'dev')).toMatchObject({ type: 'dir', mode: 0o755, uid: 0, mtimeMs: 0 }); // implicit
    expect(entryAt(idx, 'bin/ping')).toMatchObject({
      type: 'file',
      mode: 0o4755,
      size: 3000,
      xattrs: { 'security.capability': cap.toString('base64') },
    });
    expect(entryAt(idx, 'bin/sh')).toMatchObject({
      type: 'symlink',
      linkTarget: '/bin/busybox',
      size: 0,
      mode: 0o777,
    });
    expect(entryAt(idx, 'bin/ping2')).toMatchObject({ type: 'hardlink', linkTarget: 'bin/ping', size: 3000 });
    expect(entryAt(idx, 'bin/ping3')).toMatchObject({ type: 'hardlink', linkTarget: 'bin/ping', size: 3000 });
    expect(entryAt(idx, 'dev/null')).toMatchObject({ type: 'char', devMajor: 1, devMinor: 3, mode: 0o666 });
    expect(entryAt(idx, 'dev/sda')).toMatchObject({ type: 'block', devMajor: 8, devMinor: 0 });
    expect(entryAt(idx, 'run/fifo')).toMatchObject({
      type: 'fifo',
      mtimeMs: Date.parse('2020-02-02T02:02:02Z'),
    });
    expect(entryAt(idx, 'empty')).toMatchObject({ type: 'file', size: 0, digest: sha256('') });
    expect(entryAt(idx, 'etc/passwd')?.mtimeMs).toBe(Date.parse('2023-06-01T12:34:56Z'));
    expect(readViaIndex(idx, b.blob, 'bin/ping2').equals(entries[3]!.content!)).toBe(true);
    // The TOC and landmarks never show; the index came from two range reads (footer + TOC).
    expect(entryAt(idx, 'stargz.index.json')).toBeUndefined();
    expect(b.reader.rangeCalls).toBe(2);
  });

  it('chunks a 10 MiB file at 1 MiB, each chunk its own gzip member', async () => {
    const big = randomBytes(10 * MiB + 12345);
    const entries: EstargzInputEntry[] = [
      { path: 'small', type: 'file', content: Buffer.from('x') },
      { path: 'big', type: 'file', content: big },
      { path: 'after', type: 'file', content: Buffer.from('tail') },
    ];
    const b = await writeAndIndex(entries, { chunkSizeBytes: MiB });
    expectRoundTrip(b, entries);
    const e = entryAt(b.index, 'big')!;
    const chunks = b.index.chunks.filter(
      (c) => c.offset >= e.dataOffset! && c.offset < e.dataOffset! + e.size,
    );
    expect(chunks.length).toBe(11);
    expect(chunks.slice(0, 10).every((c) => c.size === MiB)).toBe(true);
    expect(chunks[10]!.size).toBe(12345);
    expect(chunks.every((c) => c.skip === 0 && c.checkpoint === -1)).toBe(true);
    // Each span is exactly one member: it decodes to the chunk plus at most the tar padding and next headers.
    for (const c of chunks) expect(decodeChunkForTest(b.blob, c).length).toBe(c.size);
  });

  it('handles thousands of small files and long names (> 255 bytes) through PAX headers', async () => {
    const entries: EstargzInputEntry[] = [];
    for (let i = 0; i < 3000; i++) {
      entries.push({
        path: `d${i % 17}/f${i}.txt`,
        type: 'file',
        content: Buffer.from(`file ${i}\n`.repeat(i % 5)),
      });
    }
    const long = `${'deep/'.repeat(40)}${'n'.repeat(200)}`;
    entries.push({ path: long, type: 'file', content: Buffer.from('long name content') });
    entries.push({ path: 'ln-long', type: 'symlink', linkTarget: long });
    entries.push({ path: 'hl-long', type: 'hardlink', linkTarget: long });
    const b = await writeAndIndex(entries);
    expectRoundTrip(b, entries);
    expect(long.length).toBeGreaterThan(255);
    expect(entryAt(b.index, 'ln-long')?.linkTarget).toBe(long);
    expect(entryAt(b.index, 'hl-long')).toMatchObject({ linkTarget: long, size: 17 });
    expect(entryAt(b.index, 'deep/deep')?.type).toBe('dir');
    expect(b.index.entries.length).toBe(1 + 17 + 3000 + 40 + 1 + 2);
  });

  it('turns .wh.<name> into whiteouts and .wh..wh..opq into opaque dirs, hiding both', async () => {
    const entries: EstargzInputEntry[] = [
      { path: 'etc/', type: 'dir', mode: 0o700 },
      { path: 'etc/.wh.motd', type: 'file' },
      { path: 'var/lib/.wh..wh..opq', type: 'file' },
      { path: 'var/lib/fresh', type: 'file', content: Buffer.from('new') },
      { path: 'opt/.wh..wh..opq', type: 'file' },
      { path: 'opt', type: 'dir', mode: 0o711 }, // opaque applies wherever the marker sits in the tar
      { path: '.wh.rootfile', type: 'file' },
      { path: 'srv/.wh.kept', type: 'file' },
      { path: 'srv/kept', type: 'file', content: Buffer.from('same layer wins') },
      { path: 'tmp/.wh..wh.plnk', type: 'file' }, // aufs metadata, not a whiteout
    ];
    const b = await writeAndIndex(entries);
    expectRoundTrip(b, entries);
    const idx = b.index;
    expect(idx.entries.map((e) => `${e.path}:${e.type}${e.opaque ? ':opaque' : ''}`)).toEqual([
      ':dir',
      'etc:dir',
      'etc/motd:whiteout',
      'opt:dir:opaque',
      'rootfile:whiteout',
      'srv:dir',
      'srv/kept:file',
      'tmp:dir',
      'var:dir',
      'var/lib:dir:opaque',
      'var/lib/fresh:file',
    ]);
    expect(entryAt(idx, 'etc')?.mode).toBe(0o700);
    expect(entryAt(idx, 'opt')?.mode).toBe(0o711);
    expect(entryAt(idx, 'etc/motd')).toMatchObject({ mode: 0, uid: 0, gid: 0, size: 0 });
    expect(idx.entries.some((e) => e.path.includes('.wh.'))).toBe(false);
  });

  it('puts prioritized files first, before .prefetch.landmark, and reports the prefetch end', async () => {
    const entries: EstargzInputEntry[] = [
      { path: 'usr', type: 'dir' },
      { path: 'usr/bin', type: 'dir' },
      { path: 'usr/bin/app', type: 'file', content: randomBytes(50_000) },
      { path: 'usr/lib/libx.so', type: 'file', content: randomBytes(70_000) },
      { path: 'data/cold.bin', type: 'file', content: randomBytes(200_000) },
      { path: 'etc/app.conf', type: 'file', content: Buffer.from('conf=1\n') },
    ];
    const w = writeEstargz(entries, { prioritized: ['usr/bin/app', 'etc/app.conf'] });
    const reader = new MemoryBlobReader(w.blob);
    const load = await loadEstargz({
      layerDigest: reader.digest,
      mediaType: MEDIA_TYPE,
      blob: reader,
      tocDigest: w.tocDigest,
    });
    expect(load.tocDigest).toBe(w.tocDigest);
    expect(load.tocOffset).toBe(w.tocOffset);
    expect(load.footerSize).toBe(51);
    const names = load.toc.entries.map((e) => e.name);
    expect(names.slice(0, 5)).toEqual([
      'usr/',
      'usr/bin/',
      'usr/bin/app',
      'etc/app.conf',
      '.prefetch.landmark',
    ]);
    const end = load.prefetchEnd!;
    expect(end).toBe(estargzPrefetchEnd(load.toc));
    expect(entryAt(load.index, '.prefetch.landmark')).toBeUndefined();
    // The prioritized files' chunks lie inside [0, end); the others after it.
    const inPrefetch = (p: string): boolean => {
      const e = entryAt(load.index, p)!;
      return load.index.chunks
        .filter((c) => c.offset >= e.dataOffset! && c.offset < e.dataOffset! + e.size)
        .every((c) => c.compressedEnd <= end);
    };
    expect(inPrefetch('usr/bin/app')).toBe(true);
    expect(inPrefetch('etc/app.conf')).toBe(true);
    expect(inPrefetch('data/cold.bin')).toBe(false);
    expectRoundTrip({ blob: w.blob, tocOffset: w.tocOffset, index: load.index }, entries);

    const none = writeEstargz(entries, { noPrefetchLandmark: true });
    const r2 = new MemoryBlobReader(none.blob);
    const l2 = await loadEstargz({ layerDigest: r2.digest, mediaType: MEDIA_TYPE, blob: r2 });
    expect(l2.prefetchEnd).toBe(0);
    expect(entryAt(l2.index, '.no.prefetch.landmark')).toBeUndefined();
    const plain = writeEstargz(entries);
    const r3 = new MemoryBlobReader(plain.blob);
    expect(
      (await loadEstargz({ layerDigest: r3.digest, mediaType: MEDIA_TYPE, blob: r3 })).prefetchEnd,
    ).toBeUndefined();
  });

  it('packs small files into shared members with innerOffset and still reads every byte', async () => {
    const entries: EstargzInputEntry[] = [];
    for (let i = 0; i < 200; i++)
      entries.push({ path: `s/${i}`, type: 'file', content: randomBytes(1 + ((i * 37) % 900)) });
    entries.push({ path: 'big', type: 'file', content: randomBytes(300_000) });
    for (let i = 0; i < 50; i++) entries.push({ path: `t/${i}`, type: 'file', content: randomBytes(10 + i) });
    const b = await writeAndIndex(entries, { minChunkSizeBytes: 16 * 1024, chunkSizeBytes: 64 * 1024 });
    expectRoundTrip(b, entries);
    const shared = b.index.chunks.filter((c) => c.skip > 0);
    expect(shared.length).toBeGreaterThan(100);
    const starts = new Set(b.index.chunks.map((c) => c.compressedStart));
    expect(starts.size).toBeLessThan(b.index.chunks.length / 3);
  });

  it('accepts the legacy 47-byte footer and detects both footers', async () => {
    const entries: EstargzInputEntry[] = [{ path: 'a', type: 'file', content: Buffer.from('legacy footer') }];
    const b = await writeAndIndex(entries, { legacyFooter: true });
    expectRoundTrip(b, entries);
    expect(await isEstargz(b.reader)).toBe(true);
    const w = writeEstargz(entries);
    expect(w.blob.length - b.blob.length).toBe(4);
    expect(await isEstargz(new MemoryBlobReader(w.blob))).toBe(true);
  });

  it('indexes an empty layer (TOC only) as just the root', async () => {
    const b = await writeAndIndex([]);
    expect(b.tocOffset).toBe(0);
    expect(b.index.entries).toEqual([
      { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
    ]);
    expect(b.index.chunks).toEqual([]);
    expect(b.index.uncompressedSize).toBe(0);
  });

  it('lets the last duplicate win and drops children of a dir replaced by a file', async () => {
    const entries: EstargzInputEntry[] = [
      { path: './', type: 'dir', mode: 0o700, uid: 5 },
      { path: 'x', type: 'file', content: Buffer.from('first') },
      { path: 'd', type: 'dir' },
      { path: 'd/child', type: 'file', content: Buffer.from('gone') },
      { path: 'x', type: 'file', content: Buffer.from('second') },
      { path: 'd', type: 'file', content: Buffer.from('now a file') },
    ];
    const b = await writeAndIndex(entries);
    expect(b.index.entries.map((e) => e.path)).toEqual(['', 'd', 'x']);
    expect(b.index.entries[0]).toMatchObject({ type: 'dir', mode: 0o700, uid: 5 });
    expect(readViaIndex(b.index, b.blob, 'x').toString()).toBe('second');
    expect(readViaIndex(b.index, b.blob, 'd').toString()).toBe('now a file');
  });
});

describe('eStargz index with the project decoder and serializer', () => {
  it('decodeChunk (src/codec) yields every chunk, including innerOffset-packed ones', async () => {
    const entries: EstargzInputEntry[] = [];
    for (let i = 0; i < 40; i++)
      entries.push({ path: `p/${i}`, type: 'file', content: randomBytes(100 + i * 50) });
    entries.push({ path: 'big', type: 'file', content: randomBytes(3 * MiB + 7) });
    const b = await writeAndIndex(entries, { chunkSizeBytes: MiB, minChunkSizeBytes: 8192 });
    expect(b.index.chunks.some((c) => c.skip > 0)).toBe(true);
    b.index.chunks.forEach((c, i) => {
      const bytes = decodeChunk(b.index, i, b.blob.subarray(c.compressedStart, c.compressedEnd));
      expect(sha256(bytes)).toBe(c.digest);
      expect(bytes.equals(decodeChunkForTest(b.blob, c))).toBe(true);
    });
  });

  it('survives serializeIndex/deserializeIndex unchanged', async () => {
    const b = await writeAndIndex([
      { path: 'a/x', type: 'file', content: Buffer.from('x'), xattrs: { 'user.y': Buffer.from('z') } },
      { path: 'a/.wh.gone', type: 'file' },
      { path: 'b/.wh..wh..opq', type: 'file' },
      { path: 'h', type: 'hardlink', linkTarget: 'a/x' },
    ]);
    expect(deserializeIndex(serializeIndex(b.index), b.index.layerDigest)).toEqual(b.index);
  });
});
