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

/** Every entry's xattrs in one getfattr run (one per entry cost a process each: most of a walk's time). */
async function treeXattrs(dir) {
  const { stdout } = await run(
    'getfattr',
    ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', dir],
    { maxBuffer: 256 << 20, encoding: 'buffer' },
  );
  const byPath = new Map();
  let current;
  for (const line of stdout.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      current = unescapeName(line.slice('# file: '.length));
      byPath.set(current, []);
    } else if (current !== undefined && line.includes('=') && !line.startsWith('trusted.overlay.')) {
      byPath.get(current).push(line);
    }
  }
  return new Map([...byPath].map(([p, lines]) => [p, lines.sort().join(';')]));
}

/** getfattr prints a name's bytes, with unprintable ones as \ooo octal escapes; the bytes are UTF-8. */
function unescapeName(text) {
  const bytes = [];
  for (let i = 0; i < text.length; i++) {
    const m = text[i] === '\\' ? /^[0-7]{3}/.exec(text.slice(i + 1)) : null;
    if (m !== null) {
      bytes.push(parseInt(m[0], 8));
      i += 3;
    } else bytes.push(text.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

const entries = [];
async function walk(rel) {
  const path = rel === '' ? root : join(root, rel);
  const st = await lstat(path);
  const e = { type: kind(st), mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
  if (e.type !== 'dir') e.mtime = Math.floor(st.mtimeMs / 1000);
  if (e.type === 'file') {
    e.size = st.size;
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const group = inodes.get(key) ?? [];
      group.push(rel);
      inodes.set(key, group);
    }
  }
  if (e.type === 'symlink') e.target = await readlink(path);
  if (e.type === 'char' || e.type === 'block') e.rdev = st.rdev;
  out[rel === '' ? '/' : rel] = e;
  entries.push([rel, path, e]);
  if (e.type === 'dir') {
    const names = (await readdir(path)).sort();
    for (const n of names) await walk(rel === '' ? n : `${rel}/${n}`);
  }
}

/** File contents hashed a few at a time: a cold FUSE read waits on the network, so overlap them. */
async function hashFiles(concurrency) {
  const files = entries.filter(([, , e]) => e.type === 'file');
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const [, path, e] = files[next++];
      e.sha256 = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

await walk('');
const [xattrsByPath] = await Promise.all([treeXattrs(root), hashFiles(8)]);
for (const [, path, e] of entries) {
  const x = e.type === 'symlink' ? undefined : xattrsByPath.get(path);
  if (x !== undefined && x !== '') e.xattrs = x;
}
const hardlinks = [...inodes.values()]
  .filter((g) => g.length > 1)
  .map((g) => g.sort().join('='))
  .sort();
process.stdout.write(JSON.stringify({ entries: out, hardlinks }));
