// Prints a JSON description of a directory tree (types, modes, owners, sizes, link targets, content hashes,
// xattrs, hardlink groups). Run as a child process so that reading a FUSE mount never blocks its server.
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';

const run = promisify(execFile);
const root = process.argv[2];
const out = {};
const inodes = new Map();

function kind(st) {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

async function xattrs(path) {
  try {
    const { stdout } = await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path]);
    return stdout
      .split('\n')
      .filter((l) => l.includes('=') && !l.startsWith('trusted.overlay.'))
      .sort()
      .join(';');
  } catch {
    return 'ERROR';
  }
}

async function walk(rel) {
  const path = rel === '' ? root : join(root, rel);
  const st = await lstat(path);
  const e = { type: kind(st), mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
  if (e.type !== 'dir') e.mtime = Math.floor(st.mtimeMs / 1000);
  if (e.type === 'file') {
    e.size = st.size;
    e.sha256 = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const group = inodes.get(key) ?? [];
      group.push(rel);
      inodes.set(key, group);
    }
  }
  if (e.type === 'symlink') e.target = await readlink(path);
  if (e.type === 'char' || e.type === 'block') e.rdev = st.rdev;
  if (e.type !== 'symlink') {
    const x = await xattrs(path);
    if (x !== '') e.xattrs = x;
  }
  out[rel === '' ? '/' : rel] = e;
  if (e.type === 'dir') {
    const names = (await readdir(path)).sort();
    for (const n of names) await walk(rel === '' ? n : `${rel}/${n}`);
  }
}

await walk('');
const hardlinks = [...inodes.values()]
  .filter((g) => g.length > 1)
  .map((g) => g.sort().join('='))
  .sort();
process.stdout.write(JSON.stringify({ entries: out, hardlinks }));
