// The streaming tar parser against archives written by GNU tar (pax, gnu, ustar) and broken ones.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { TarParser, type TarEntry } from '../../src/image/tar.js';
import { CAP_HEX, LONG_FILE, LONG_TARGET, PREFIX_FILE, gnuTar, isRoot, makeTree } from './tar-fixtures.js';

function parse(
  buf: Uint8Array,
  pieceBytes = 4096,
): { entries: Map<string, TarEntry>; data: Map<string, Buffer> } {
  const entries = new Map<string, TarEntry>();
  const parts = new Map<string, Buffer[]>();
  const p = new TarParser({
    onEntry: (e) => {
      entries.set(e.name, e);
      parts.set(e.name, []);
    },
    onData: (e, d) => parts.get(e.name)!.push(Buffer.from(d)),
  });
  for (let i = 0; i < buf.length; i += pieceBytes) p.push(buf.subarray(i, i + pieceBytes));
  p.end();
  expect(p.ended).toBe(true);
  expect(p.offset).toBe(buf.length);
  const data = new Map([...parts].map(([k, v]) => [k, Buffer.concat(v)]));
  return { entries, data };
}

/** Names as GNU tar lists them, normalised the same way. */
function tarNames(archive: string): string[] {
  const out = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^\.\/?/, '').replace(/\/$/, ''));
}

describe.each(['pax', 'gnu', 'ustar'] as const)('TarParser on GNU tar --format=%s', (format) => {
  const long = format !== 'ustar';
  const root = makeTree({ long });
  const tar = gnuTar(root, format, format === 'ustar' ? [] : ['--owner=3000000', '--group=70000']);
  const archive = join(root, '..', `${format}.tar`);
  afterAll(() => rmSync(join(root, '..'), { recursive: true, force: true }));

  it('lists exactly the names GNU tar lists, with exact data offsets', () => {
    for (const piece of [1, 511, 512, 100_000]) {
      if (piece === 1 && tar.length > 200_000) continue;
      const { entries, data } = parse(tar, piece);
      expect([...entries.keys()].sort()).toEqual(tarNames(archive).sort());
      for (const e of entries.values()) {
        expect(e.dataOffset).toBe(e.headerOffset + 512);
        expect(tar.subarray(e.dataOffset, e.dataOffset + e.size).equals(data.get(e.name)!)).toBe(true);
      }
    }
  });

  it('reports types, modes, sizes, links, mtimes and owners like the files', () => {
    const { entries } = parse(tar);
    const get = (n: string): TarEntry => {
      const e = entries.get(n);
      if (e === undefined) throw new Error(`missing ${n}`);
      return e;
    };
    expect(get('').type).toBe('dir');
    expect(get('d').type).toBe('dir');
    const small = get('d/small.txt');
    expect(small).toMatchObject({ type: 'file', size: 10, mode: 0o644 });
    expect(tar.subarray(small.dataOffset, small.dataOffset + 10).toString()).toBe('hello tar\n');
    const st = lstatSync(join(root, 'd/small.txt'));
    expect(small.mtimeMs).toBe(
      format === 'pax' ? Math.floor(st.mtimeMs) : Math.floor(st.mtimeMs / 1000) * 1000,
    );
    expect(get('empty')).toMatchObject({ type: 'file', size: 0 });
    expect(get('big.bin')).toMatchObject({ type: 'file', size: 70_000 });
    expect(get('suid').mode).toBe(0o4755);
    expect(get('sticky')).toMatchObject({ type: 'dir', mode: 0o1777 });
    const hard = entries.get('d/hard')!.type === 'hardlink' ? get('d/hard') : get('d/small.txt');
    expect(hard.type).toBe('hardlink');
    expect(hard.size).toBe(0);
    expect(['./d/small.txt', './d/hard']).toContain(hard.linkName);
    expect(get('link')).toMatchObject({ type: 'symlink', linkName: 'd/small.txt' });
    expect(get('fifo').type).toBe('fifo');
    if (isRoot) expect(get('null')).toMatchObject({ type: 'char', devMajor: 1, devMinor: 3 });
    expect(get(PREFIX_FILE)).toMatchObject({ type: 'file', size: 13 });
    if (long) {
      expect(LONG_FILE.length).toBeGreaterThan(255);
      expect(get(LONG_FILE)).toMatchObject({ type: 'file', size: 10 });
      expect(get('longlink')).toMatchObject({ type: 'symlink', linkName: LONG_TARGET });
      expect(get('d/small.txt')).toMatchObject({ uid: 3_000_000, gid: 70_000 }); // base-256 in gnu, PAX in pax
    } else {
      // The file's own owner (root in CI, the runner's uid in an unprivileged run).
      expect(get('d/small.txt')).toMatchObject({ uid: st.uid, gid: st.gid });
    }
  });

  if (format === 'pax')
    it('carries xattrs from SCHILY.xattr.* as base64', () => {
      const x = parse(tar).entries.get('xattr.txt')!;
      expect(Buffer.from(x.xattrs['user.ferry']!, 'base64').toString()).toBe('value-1');
      if (isRoot)
        expect(Buffer.from(x.xattrs['security.capability']!, 'base64').toString('hex')).toBe(CAP_HEX);
    });

  it('rejects a corrupted header checksum naming the offset', () => {
    const { entries } = parse(tar);
    const at = entries.get('d/small.txt')!.headerOffset;
    const bad = Buffer.from(tar);
    bad[at + 10] = (bad[at + 10]! + 1) & 0xff;
    expect(() => parse(bad)).toThrow(new RegExp(`checksum at offset ${at}`));
  });

  it('rejects truncation inside a header, a body and a pending extension', () => {
    const { entries } = parse(tar);
    const big = entries.get('big.bin')!;
    for (const cut of [big.headerOffset + 100, big.dataOffset + 1000, big.dataOffset + 70_000 + 10]) {
      expect(() => parse(tar.subarray(0, cut))).toThrow(FormatError);
    }
  });
});

describe('TarParser with a reused input buffer', () => {
  it('keeps a PAX body split across pushes intact when the caller overwrites its buffer in between', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-tar-reuse-'));
    const name = `${'n'.repeat(150)}.txt`; // over 100 bytes: GNU tar puts the path in a PAX record
    writeFileSync(join(dir, name), 'x');
    const archive = execFileSync('tar', ['--format=pax', '-C', dir, '-cf', '-', name]);
    rmSync(dir, { recursive: true, force: true });
    const seen: string[] = [];
    const p = new TarParser({ onEntry: (e) => seen.push(e.name) });
    // One Buffer refilled for every piece, cut inside the PAX body, as the zstd decoder's output buffer is.
    const out = Buffer.alloc(520);
    for (let i = 0; i < archive.length; i += out.length) {
      const n = archive.copy(out, 0, i, i + out.length);
      p.push(out.subarray(0, n));
      out.fill(0x41);
    }
    p.end();
    expect(seen).toEqual([name]);
  });
});

describe('TarParser edge cases', () => {
  const root = makeTree({ long: false });
  afterAll(() => rmSync(join(root, '..'), { recursive: true, force: true }));
  const tar = gnuTar(root, 'pax');
  const endOfData = (() => {
    let last = 0;
    new TarParser({
      onEntry: (e) => (last = Math.max(last, e.dataOffset + Math.ceil(e.size / 512) * 512)),
    }).push(tar);
    return last;
  })();

  it('tolerates a missing second zero block, no marker at all, and trailing zeros', () => {
    const oneZero = Buffer.concat([tar.subarray(0, endOfData), Buffer.alloc(512)]);
    const p = new TarParser({ onEntry: () => {} });
    p.push(oneZero);
    p.end();
    expect(p.ended).toBe(false);
    const bare = new TarParser({ onEntry: () => {} });
    bare.push(tar.subarray(0, endOfData));
    bare.end();
    parse(Buffer.concat([tar, Buffer.alloc(8192)]));
  });

  it('rejects `..` names, absurd sizes and skips unknown types', () => {
    const header = (name: string, type: string, sizeField: Buffer | string): Buffer => {
      const h = Buffer.alloc(512);
      h.write(name, 0);
      h.write('0000644\0', 100);
      h.write('0000000\0', 108);
      h.write('0000000\0', 116);
      if (typeof sizeField === 'string') h.write(sizeField, 124);
      else sizeField.copy(h, 124);
      h.write('00000000000\0', 136);
      h.write(type, 156);
      h.write('ustar\u000000', 257);
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
      return h;
    };
    const end = Buffer.alloc(1024);
    expect(() => parse(Buffer.concat([header('a/../../etc/passwd', '0', '00000000000\0'), end]))).toThrow(
      /escapes the layer root.*offset 0/,
    );
    const huge = Buffer.alloc(12, 0xff);
    huge[0] = 0x80; // base-256, 2^88-ish
    expect(() => parse(Buffer.concat([header('x', '0', huge), end]))).toThrow(/2\^53/);
    const negative = Buffer.alloc(12, 0xff); // base-256 −1
    expect(() => parse(Buffer.concat([header('x', '0', negative), end]))).toThrow(/negative size/);
    const unknown = Buffer.concat([
      header('weird', 'Z', '00000000005\0'),
      Buffer.alloc(512, 1),
      header('ok', '0', '00000000000\0'),
      end,
    ]);
    expect([...parse(unknown).entries.keys()]).toEqual(['ok']);
    const abs = parse(Buffer.concat([header('/abs/./x//y/', '5', '00000000000\0'), end]));
    expect([...abs.entries.keys()]).toEqual(['abs/x/y']);
  });

  it('decodes LIBARCHIVE.xattr.* and fractional PAX mtime', () => {
    const rec = (k: string, v: string): string => {
      let len = k.length + v.length + 3;
      len += String(len).length;
      if (String(len).length !== String(len - 1).length) len++;
      return `${len} ${k}=${v}\n`;
    };
    const body =
      rec('LIBARCHIVE.xattr.user.a%3Db', Buffer.from('xyz').toString('base64')) +
      rec('mtime', '1700000000.123456789');
    const mk = (name: string, type: string, size: number): Buffer => {
      const h = Buffer.alloc(512);
      h.write(name, 0);
      h.write('0000644\0', 100);
      h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
      h.write('00000000000\0', 136);
      h.write(type, 156);
      h.write('ustar\u000000', 257);
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
      return h;
    };
    const bodyBuf = Buffer.from(body);
    const padded = Buffer.concat([bodyBuf, Buffer.alloc((512 - (bodyBuf.length % 512)) % 512)]);
    const { entries } = parse(
      Buffer.concat([mk('PaxHeader', 'x', bodyBuf.length), padded, mk('f', '0', 0), Buffer.alloc(1024)]),
    );
    const f = entries.get('f')!;
    expect(f.mtimeMs).toBe(1_700_000_000_123);
    expect(Buffer.from(f.xattrs['user.a=b']!, 'base64').toString()).toBe('xyz');
  });

  it('matches readFileSync for the fixture root', () => {
    expect(readFileSync(join(root, 'd/small.txt'), 'utf8')).toBe('hello tar\n');
  });
});
