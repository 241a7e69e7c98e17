// System-level probes for the FUSE benchmarks, each in a child process: dropping the page cache, `dd` of a file
// to /dev/null, `find` that stats every entry of a tree, and unpacking a layer to local disk.
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { elapsed } from './report.js';

const run = promisify(execFile);

/** Drops clean page cache, dentries and inodes (needs root); returns why not when it cannot. */
export async function dropCaches(): Promise<string | undefined> {
  try {
    await run('sync');
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
    return undefined;
  } catch (e) {
    return `cannot drop caches (${e instanceof Error ? e.message : String(e)}): first reads may be cached`;
  }
}

/** `dd if=<path> of=/dev/null bs=1M`, timed from outside; returns bytes copied and wall time. */
export async function ddRead(path: string): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  const { stderr } = await run('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M']);
  const ms = elapsed(t0);
  const m = /^(\d+) bytes/m.exec(stderr);
  if (!m) throw new Error(`dd printed no byte count: ${stderr}`);
  return { bytes: Number(m[1]), ms };
}

/** `find <dir> -printf …` with fields that need an lstat of every entry; returns the entry count and time. */
export async function findStat(dir: string): Promise<{ entries: number; ms: number }> {
  const t0 = performance.now();
  const entries = await new Promise<number>((resolve, reject) => {
    const child = spawn('find', [dir, '-printf', '%i %s %m %U %G %T@ %y\\n'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lines = 0;
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      for (const c of b) if (c === 10) lines++;
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(lines) : reject(new Error(`find exited ${code}: ${stderr}`)),
    );
  });
  return { entries, ms: elapsed(t0) };
}

export async function untarFile(gzPath: string, dir: string): Promise<void> {
  await run('mkdir', ['-p', dir]);
  await run('tar', ['-xzf', gzPath, '-C', dir]);
}
