// Generates the test image corpus on disk: layer trees with every entry kind OCI layers carry, packed by GNU tar.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { writeEstargz, type EstargzBlob, type EstargzInputEntry } from './estargz-writer.js';

export interface CorpusOptions {
  /** Number of small files in the base layer. */
  smallFiles: number;
  /** Bytes of each of the two big files (one incompressible, one text). */
  bigFileBytes: number;
  seed?: number;
}

export interface CorpusLayer {
  /**
   * Directory holding the layer's tree as GNU tar packs it (whiteouts as `.wh.` files). Run unprivileged, the base
   * layer's `srv/owned` and `srv/null-dev` are only in `tar`: no one else can chown or mknod.
   */
  dir: string;
  tar: Buffer;
}

/** Deterministic pseudo-random bytes (xorshift): incompressible but reproducible. */
export function pseudoRandom(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ 0x5bd1e995) | 1; // distinct seeds, distinct streams
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, i);
  }
  for (let i = size - (size % 4); i < size; i++) out[i] = i & 0xff;
  return out;
}

/** Compressible text-like bytes. */
export function pseudoText(size: number, seed: number): Buffer {
  const words = ['lorem', 'ipsum', 'ferry', 'chunk', 'layer', 'mount', 'registry', 'index', 'zran', 'node'];
  const parts: string[] = [];
  let len = 0;
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ 0x5bd1e995) | 1; // distinct seeds, distinct streams
  while (len < size) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const w = `${words[x % words.length]!}${x % 97} `;
    parts.push(w);
    len += w.length;
    if (x % 13 === 0) {
      parts.push('\n');
      len++;
    }
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

function put(root: string, path: string, content: Buffer | string, mode = 0o644): void {
  const p = join(root, path);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, content);
  chmodSync(p, mode);
}

/**
 * Entries only root can make on disk (another owner, a device node). Unprivileged, they are written straight into
 * the archive instead, with the same header fields, so the layer the tests read is the same either way.
 */
interface SpecialEntry {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  /** `0` regular file, `3` character device (ustar type flags). */
  type: '0' | '3';
  dev?: [number, number];
  data?: string;
}

const SPECIAL: readonly SpecialEntry[] = [
  { name: 'srv/owned', mode: 0o640, uid: 1000, gid: 2000, type: '0', data: 'owned by 1000:2000\n' },
  { name: 'srv/null-dev', mode: 0o644, uid: 0, gid: 0, type: '3', dev: [1, 3] },
];

const isRoot = (): boolean => process.getuid?.() === 0;

function makeSpecial(root: string, e: SpecialEntry): void {
  if (e.type === '0') {
    put(root, e.name, e.data ?? '', e.mode);
    chownSync(join(root, e.name), e.uid, e.gid);
  } else {
    const [major, minor] = e.dev ?? [0, 0];
    execFileSync('mknod', [join(root, e.name), 'c', String(major), String(minor)]);
  }
}

/** One ustar header (+ data, padded to 512 bytes): enough for the two short-named entries above. */
function ustar(e: SpecialEntry): Buffer {
  const data = Buffer.from(e.data ?? '');
  const h = Buffer.alloc(512);
  const octal = (v: number, at: number, width: number) =>
    h.write(`${v.toString(8).padStart(width - 1, '0')}\0`, at, 'ascii');
  h.write(`./${e.name}`, 0, 'utf8');
  octal(e.mode, 100, 8);
  octal(e.uid, 108, 8);
  octal(e.gid, 116, 8);
  octal(data.length, 124, 12);
  octal(0, 136, 12); // mtime
  h.write(e.type, 156, 'ascii');
  h.write('ustar\u000000', 257, 'ascii');
  octal(e.dev?.[0] ?? 0, 329, 8);
  octal(e.dev?.[1] ?? 0, 337, 8);
  h.fill(' ', 148, 156); // the checksum counts its own field as spaces
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}

/** GNU tar's archive with `extra` appended through `tar -A` (which handles the end-of-archive blocks). */
function withEntries(dir: string, archive: Buffer, extra: readonly SpecialEntry[]): Buffer {
  if (extra.length === 0) return archive;
  const main = `${dir}.main.tar`;
  const more = `${dir}.more.tar`;
  writeFileSync(main, archive);
  writeFileSync(more, Buffer.concat([...extra.map(ustar), Buffer.alloc(1024)]));
  execFileSync('tar', ['-A', '-f', main, more]);
  const out = readFileSync(main);
  rmSync(main);
  rmSync(more);
  return out;
}

function tarDir(dir: string, extra: readonly SpecialEntry[] = []): Buffer {
  return withEntries(dir, gnuTar(dir), extra);
}

function gnuTar(dir: string): Buffer {
  // --sort=name and fixed owner data keep the blob reproducible; PAX carries xattrs and long names.
  return execFileSync(
    'tar',
    [
      '--format=pax',
      '--xattrs',
      '--xattrs-include=*',
      '--sort=name',
      '--numeric-owner',
      '-C',
      dir,
      '-cf',
      '-',
      '.',
    ],
    { maxBuffer: 4 * 1024 * 1024 * 1024 },
  );
}

/** The base layer's tree; returns the entries the archive must carry that this user could not make on disk. */
function base(root: string, o: CorpusOptions): SpecialEntry[] {
  const seed = o.seed ?? 7;
  for (const d of ['etc', 'usr/bin', 'usr/lib', 'var/empty', 'opt/app/old', 'srv']) {
    mkdirSync(join(root, d), { recursive: true });
  }
  put(root, 'etc/hostname', 'ferry\n');
  put(root, 'etc/removed.conf', 'this file is whited out by layer 2\n');
  put(root, 'etc/replaced.conf', 'version 1\n');
  put(root, 'etc/empty', '');
  put(root, 'usr/bin/tool', pseudoRandom(70_000, seed), 0o4755);
  linkSync(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-hardlink'));
  put(root, 'usr/bin/sgid', 'sgid\n', 0o2755);
  symlinkSync('tool', join(root, 'usr/bin/tool-symlink'));
  symlinkSync('/etc/hostname', join(root, 'etc/hostname-abs'));
  symlinkSync('../does/not/exist', join(root, 'etc/dangling'));
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
  put(root, 'usr/lib/big-random.bin', pseudoRandom(o.bigFileBytes, seed + 1));
  put(root, 'usr/lib/big-text.txt', pseudoText(o.bigFileBytes, seed + 2));
  put(root, 'srv/xattr-file', 'has xattrs\n');
  execFileSync('setfattr', ['-n', 'user.ferry.test', '-v', 'hello', join(root, 'srv/xattr-file')]);
  execFileSync('setfattr', ['-n', 'user.ferry.bin', '-v', '0x00ff10', join(root, 'srv/xattr-file')]);
  const longDir = `${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(90)}`;
  put(root, `srv/${longDir}/${'n'.repeat(120)}.txt`, 'long path\n');
  symlinkSync(`../${'t'.repeat(150)}`, join(root, 'srv/long-link'));
  execFileSync('mkfifo', [join(root, 'srv/fifo')]);
  if (isRoot()) for (const e of SPECIAL) makeSpecial(root, e);
  put(root, 'opt/app/old/a.txt', 'hidden by the opaque dir in layer 2\n');
  put(root, 'opt/app/keep-not.txt', 'hidden too\n');
  for (let i = 0; i < o.smallFiles; i++) {
    const dir = `usr/share/data/${String(Math.floor(i / 100)).padStart(3, '0')}`;
    const size = (i * 7919) % 9000;
    const content = i % 3 === 0 ? pseudoRandom(size, seed + i) : pseudoText(size, seed + i);
    put(root, `${dir}/file-${i}.dat`, content, i % 5 === 0 ? 0o755 : 0o644);
  }
  return isRoot() ? [] : [...SPECIAL];
}

function upper(root: string, o: CorpusOptions): void {
  const seed = (o.seed ?? 7) + 1000;
  put(root, 'etc/.wh.removed.conf', '');
  put(root, 'etc/replaced.conf', 'version 2\n');
  put(root, 'opt/app/.wh..wh..opq', '');
  put(root, 'opt/app/new.txt', 'visible after the opaque marker\n');
  put(root, 'usr/share/data/000/.wh.file-1.dat', '');
  put(root, 'usr/lib/layer2.bin', pseudoRandom(300_000, seed));
  for (let i = 0; i < Math.min(200, o.smallFiles); i++) {
    put(root, `usr/share/more/m-${i}.txt`, pseudoText(500 + i, seed + i));
  }
}

function top(root: string): void {
  put(root, 'srv/.wh.fifo', '');
  put(root, 'usr/share/.wh.more', '');
  put(root, 'app/start.sh', '#!/bin/sh\necho started\n', 0o755);
}

/** Writes three layer trees under `dir` and packs each with GNU tar. */
export function makeCorpus(dir: string, o: CorpusOptions): CorpusLayer[] {
  const builders = [
    (r: string) => base(r, o),
    (r: string): SpecialEntry[] => {
      upper(r, o);
      return [];
    },
    (r: string): SpecialEntry[] => {
      top(r);
      return [];
    },
  ];
  return builders.map((build, i) => {
    const root = join(dir, `layer${i}`);
    mkdirSync(root, { recursive: true });
    const extra = build(root);
    return { dir: root, tar: tarDir(root, extra) };
  });
}

export function gzipLayer(tar: Buffer, level = 6): Buffer {
  return gzipSync(tar, { level });
}

export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

const TAR_TYPES: Record<string, EstargzInputEntry['type'] | undefined> = {
  file: 'file',
  directory: 'dir',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'char',
  'block-device': 'block',
  fifo: 'fifo',
};

/** Raw xattr values of a file (tar-stream decodes PAX values as UTF-8, which mangles binary ones). */
function xattrsOnDisk(path: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const text = execFileSync('getfattr', [
    '-h',
    '-d',
    '-m',
    '-',
    '-e',
    'hex',
    '--absolute-names',
    path,
  ]).toString();
  for (const line of text.split('\n')) {
    const m = /^([^=#]+)=0x([0-9a-f]*)$/.exec(line.trim());
    if (m) out[m[1]!] = Buffer.from(m[2]!, 'hex');
  }
  return out;
}

/** Re-encodes a corpus layer as eStargz (same entries, same content) with the test writer. */
export async function estargzFromLayer(
  layer: CorpusLayer,
  opts: { chunkSizeBytes?: number } = {},
): Promise<EstargzBlob> {
  const tar = layer.tar;
  const entries: EstargzInputEntry[] = [];
  const extract = tarStream.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (b: unknown) => parts.push(b as Buffer));
      stream.on('end', () => {
        const path = header.name.replace(/^\.\/?/, '').replace(/\/$/, '');
        const type = TAR_TYPES[header.type ?? 'file'];
        if (path !== '' && type !== undefined) {
          const hasXattrs = Object.keys(header.pax ?? {}).some((k) => k.startsWith('SCHILY.xattr.'));
          const xattrs = hasXattrs ? xattrsOnDisk(join(layer.dir, path)) : {};
          entries.push({
            path,
            type,
            mode: header.mode ?? 0o644,
            uid: header.uid ?? 0,
            gid: header.gid ?? 0,
            ...(header.mtime !== undefined ? { mtime: header.mtime } : {}),
            ...(type === 'file' ? { content: Buffer.concat(parts) } : {}),
            ...(header.linkname ? { linkTarget: header.linkname.replace(/^\.\//, '') } : {}),
            ...(header.devmajor !== undefined
              ? { devMajor: header.devmajor, devMinor: header.devminor ?? 0 }
              : {}),
            ...(Object.keys(xattrs).length > 0 ? { xattrs } : {}),
          });
        }
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(tar);
  await done;
  return writeEstargz(
    entries,
    opts.chunkSizeBytes !== undefined ? { chunkSizeBytes: opts.chunkSizeBytes } : {},
  );
}
