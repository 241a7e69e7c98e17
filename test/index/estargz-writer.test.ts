// The test eStargz writer produces what §4 says: valid gzip of a valid tar (GNU tar agrees), members at every
// payload, a TOC member with end-of-archive, and a footer naming the TOC offset.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { parseEstargzToc } from '../../src/image/estargz-toc.js';
import { FOOTER_SIZE, LEGACY_FOOTER_SIZE, parseEstargzFooter } from '../../src/index/estargz-footer.js';
import { writeEstargz, type EstargzInputEntry } from '../helpers/estargz-writer.js';

const long = `${'long-directory-name/'.repeat(8)}${'f'.repeat(120)}`;
const entries: EstargzInputEntry[] = [
  { path: 'etc', type: 'dir', mode: 0o755 },
  { path: 'etc/hosts', type: 'file', content: Buffer.from('127.0.0.1 localhost\n'), uid: 1000, gid: 1001 },
  {
    path: 'bin/tool',
    type: 'file',
    content: Buffer.alloc(9000, 0x41),
    mode: 0o4755,
    xattrs: { 'user.k': Buffer.from([0, 1, 0xff]) },
  },
  { path: 'bin/t2', type: 'hardlink', linkTarget: 'bin/tool' },
  { path: 'lib/x', type: 'symlink', linkTarget: '../bin/tool' },
  { path: long, type: 'file', content: Buffer.from('deep') },
  { path: 'dev/zero', type: 'char', devMajor: 1, devMinor: 5 },
  { path: 'p', type: 'fifo' },
  { path: 'e', type: 'file' },
];
const w = writeEstargz(entries, { chunkSizeBytes: 4096, prioritized: ['etc/hosts'] });
const tmp = mkdtempSync(join(tmpdir(), 'ferry-estargz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('test eStargz writer', () => {
  it('is one valid gzip stream of a tar whose sha256 is the diffID', () => {
    const tar = gunzipSync(w.blob);
    expect(sha256(tar)).toBe(w.diffId);
    expect(tar.length % 512).toBe(0);
    expect(tar.subarray(tar.length - 1024).every((b) => b === 0)).toBe(true);
    // SCHILY.xattr records carry raw bytes.
    expect(
      tar.includes(Buffer.concat([Buffer.from('SCHILY.xattr.user.k='), Buffer.from([0, 1, 0xff, 0x0a])])),
    ).toBe(true);
  });

  it('lists and extracts correctly with GNU tar', () => {
    const listing = execFileSync('tar', ['-tvzf', '-'], { input: w.blob }).toString().trim().split('\n');
    const names = listing.map((l) => l.replace(/^\S+\s+\S+\s+[\d,]+\s+\S+\s+\S+\s+/, ''));
    expect(names).toEqual([
      'etc/',
      'etc/hosts',
      '.prefetch.landmark',
      'bin/tool',
      'bin/t2 link to bin/tool',
      'lib/x -> ../bin/tool',
      long,
      'dev/zero',
      'p',
      'e',
      'stargz.index.json',
    ]);
    expect(listing[1]).toMatch(/^-rw-r--r-- 1000\/1001\s+20 /);
    expect(listing[3]).toMatch(/^-rwsr-xr-x 0\/0\s+9000 /);
    expect(listing[7]).toMatch(/^crw-r--r-- 0\/0\s+1,5 /);
    expect(listing[8]).toMatch(/^prw-r--r-- /);
    const dir = join(tmp, 'x');
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('tar', ['-xzf', '-', '-C', dir, '--exclude=dev'], { input: w.blob });
    expect(readFileSync(join(dir, 'bin/tool')).equals(entries[2]!.content!)).toBe(true);
    expect(readFileSync(join(dir, long)).toString()).toBe('deep');
    expect(readlinkSync(join(dir, 'lib/x'))).toBe('../bin/tool');
    expect(statSync(join(dir, 'bin/t2')).ino).toBe(statSync(join(dir, 'bin/tool')).ino);
    // The TOC entry has mode 0, as Go's estargz writes it: only root reads it without a chmod.
    chmodSync(join(dir, 'stargz.index.json'), 0o600);
    expect(readFileSync(join(dir, 'stargz.index.json')).equals(w.tocJson)).toBe(true);
  });

  it('starts a gzip member at every payload offset and at the TOC; the footer names the TOC', () => {
    const toc = parseEstargzToc(w.tocJson, 'test');
    expect(sha256(w.tocJson)).toBe(w.tocDigest);
    const payloads = toc.entries.filter((e) => e.offset !== undefined);
    expect(payloads.map((e) => e.type)).toEqual(['reg', 'reg', 'reg', 'chunk', 'chunk', 'reg']);
    const contentOf = (name: string): Buffer =>
      name === '.prefetch.landmark' ? Buffer.from([0x0f]) : entries.find((x) => x.path === name)!.content!;
    for (const e of payloads) {
      expect(w.blob.subarray(e.offset, e.offset! + 3)).toEqual(Buffer.from([0x1f, 0x8b, 0x08]));
      // The member at `offset` decodes to the payload first: the header went into the previous member.
      const want = contentOf(e.name).subarray(e.chunkOffset ?? 0);
      const n = e.chunkSize || want.length;
      const member = gunzipSync(w.blob.subarray(e.offset, w.tocOffset));
      expect(member.subarray(0, n).equals(want.subarray(0, n))).toBe(true);
      expect(e.chunkDigest).toBe(sha256(want.subarray(0, n)));
    }
    const tool = toc.entries.filter((e) => e.name === 'bin/tool');
    expect(tool.map((e) => [e.chunkOffset ?? 0, e.chunkSize ?? 0])).toEqual([
      [0, 4096],
      [4096, 4096],
      [8192, 0],
    ]);
    expect(tool[0]!.digest).toBe(sha256(entries[2]!.content!));
    expect(tool[0]!.mode).toBe(0o4755);
    expect(toc.entries.find((e) => e.name === 'etc/')!.mode).toBe(0o40755);
    const footer = w.blob.subarray(w.blob.length - FOOTER_SIZE);
    expect(gunzipSync(footer).length).toBe(0);
    expect(footer.subarray(16, 38).toString()).toBe(`${w.tocOffset.toString(16).padStart(16, '0')}STARGZ`);
    expect(parseEstargzFooter(footer, w.blob.length)).toEqual({
      tocOffset: w.tocOffset,
      footerSize: FOOTER_SIZE,
    });
    const legacy = writeEstargz(entries, { legacyFooter: true }).blob;
    const lf = legacy.subarray(legacy.length - LEGACY_FOOTER_SIZE);
    expect(gunzipSync(lf).length).toBe(0);
    expect(parseEstargzFooter(lf, legacy.length)?.footerSize).toBe(LEGACY_FOOTER_SIZE);
  });
});
