// Disk usage of a directory tree like containerd's fs.DiskUsage: allocated blocks of each distinct inode.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotUsage } from './types.js';

export async function diskUsage(dir: string, signal?: AbortSignal): Promise<SnapshotUsage> {
  const seen = new Set<string>();
  let sizeBytes = 0;
  const visit = async (path: string): Promise<void> => {
    signal?.throwIfAborted();
    let st;
    try {
      st = await lstat(path, { bigint: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // removed while walking
      throw e;
    }
    const inode = `${st.dev}:${st.ino}`;
    if (!seen.has(inode)) {
      seen.add(inode);
      sizeBytes += Number(st.blocks) * 512;
    }
    if (st.isDirectory()) {
      for (const name of await readdir(path)) await visit(join(path, name));
    }
  };
  await visit(dir);
  return { sizeBytes, inodes: seen.size };
}
