// Test fixtures: a directory tree with every tar entry kind, archived by GNU tar in a chosen format.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const isRoot = process.getuid?.() === 0;
export const LONG_DIR = `long-${'a'.repeat(120)}`;
export const LONG_FILE = `${LONG_DIR}/${'b'.repeat(150)}.txt`; // > 255 chars in total
export const PREFIX_FILE = `${'p'.repeat(80)}/${'q'.repeat(60)}.txt`; // > 100, fits ustar prefix+name
export const LONG_TARGET = `../${'t'.repeat(140)}`;
export const CAP_HEX = '0100000200040000000000000000000000000000'; // cap_net_bind_service, permitted

/** Creates the tree under a fresh temp dir and returns its path (entries live under `root/`). */
export function makeTree(opts: { long: boolean }): string {
  const base = mkdtempSync(join(tmpdir(), 'ferry-tar-'));
  const root = join(base, 'root');
  mkdirSync(join(root, 'd'), { recursive: true });
  writeFileSync(join(root, 'd/small.txt'), 'hello tar\n');
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'big.bin'), Buffer.alloc(70_000, 7));
  writeFileSync(join(root, 'suid'), '#!/bin/sh\n');
  chmodSync(join(root, 'suid'), 0o4755);
  mkdirSync(join(root, 'sticky'));
  chmodSync(join(root, 'sticky'), 0o1777);
  linkSync(join(root, 'd/small.txt'), join(root, 'd/hard'));
  symlinkSync('d/small.txt', join(root, 'link'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  if (isRoot) execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
  mkdirSync(join(root, 'p'.repeat(80)));
  writeFileSync(join(root, PREFIX_FILE), 'prefix split\n');
  if (opts.long) {
    mkdirSync(join(root, LONG_DIR));
    writeFileSync(join(root, LONG_FILE), 'long name\n');
    symlinkSync(LONG_TARGET, join(root, 'longlink'));
  }
  writeFileSync(join(root, 'xattr.txt'), 'has xattrs\n');
  execFileSync('setfattr', ['-n', 'user.ferry', '-v', 'value-1', join(root, 'xattr.txt')]);
  if (isRoot)
    execFileSync('setfattr', ['-n', 'security.capability', '-v', `0x${CAP_HEX}`, join(root, 'xattr.txt')]);
  utimesSync(join(root, 'd/small.txt'), 1_600_000_000, 1_600_000_000.25);
  return root;
}

/** Archives `root` (contents, named `./…`) with GNU tar and returns the bytes. */
export function gnuTar(root: string, format: 'pax' | 'gnu' | 'ustar', extra: string[] = []): Buffer {
  const out = join(root, '..', `${format}.tar`);
  // GNU tar writes PAX records for xattrs even in gnu/ustar format, so only pax gets them.
  const xattrs = format === 'pax' ? ['--xattrs', '--xattrs-include=*'] : [];
  execFileSync('tar', [`--format=${format}`, ...xattrs, ...extra, '-cf', out, '-C', root, '.'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return readFileSync(out);
}
