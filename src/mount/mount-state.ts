// The record of each `ferry mount` on disk, so `ferry umount` can find its owner and a crashed run's mounts
// can be cleaned up at the next start.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface MountRecord {
  readonly target: string;
  readonly pid: number;
  readonly ref: string;
  readonly manifestDigest: string;
  /** Layer mount points, bottom first. */
  readonly layerMounts: readonly string[];
  /** Scratch directory holding the layer mount points. */
  readonly workDir: string;
  readonly createdAt: string;
}

export function recordName(target: string): string {
  return `${createHash('sha256').update(target).digest('hex').slice(0, 16)}.json`;
}

export class MountStateDir {
  constructor(private readonly dir: string) {}

  async write(record: MountRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = join(this.dir, recordName(record.target));
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
    await rename(tmp, file);
  }

  async read(target: string): Promise<MountRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, recordName(target)), 'utf8')) as MountRecord;
    } catch {
      return undefined;
    }
  }

  async remove(target: string): Promise<void> {
    await rm(join(this.dir, recordName(target)), { force: true });
  }

  async all(): Promise<MountRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: MountRecord[] = [];
    for (const n of names.filter((x) => x.endsWith('.json'))) {
      try {
        out.push(JSON.parse(await readFile(join(this.dir, n), 'utf8')) as MountRecord);
      } catch {
        await rm(join(this.dir, n), { force: true });
      }
    }
    return out;
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
