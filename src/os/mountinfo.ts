// The kernel's mount table as this process sees it (/proc/self/mountinfo): parsed in one place for stale-mount
// cleanup, "is this a mount point", and FUSE connection lookup.
import { readFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';

export interface MountInfo {
  mountpoint: string;
  fstype: string;
  source: string;
  /** `major:minor` of the mounted device (FUSE: 0:<connection>). */
  device: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 etc.). */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    const mountpoint = fields[4];
    const fstype = fields[dash + 1];
    const source = fields[dash + 2];
    if (dash < 0 || mountpoint === undefined || fstype === undefined) continue;
    out.push({
      mountpoint: unescapeMountField(mountpoint),
      fstype,
      source: unescapeMountField(source ?? ''),
      device: fields[2] ?? '',
    });
  }
  return out;
}

export async function readMountInfo(signal?: AbortSignal): Promise<MountInfo[]> {
  const text = await readFile(
    '/proc/self/mountinfo',
    signal === undefined ? 'utf8' : { encoding: 'utf8', signal },
  );
  return parseMountInfo(text);
}

export function isFuse(m: MountInfo): boolean {
  return m.fstype === 'fuse' || m.fstype.startsWith('fuse.');
}

export async function isMountPoint(path: string): Promise<boolean> {
  const clean = resolve(path);
  return (await readMountInfo()).some((m) => m.mountpoint === clean);
}

/** FUSE mounts at or under `dir` (deepest first, so nested mounts are detached before their parents). */
export async function fuseMountsUnder(dir: string, signal?: AbortSignal): Promise<MountInfo[]> {
  const root = resolve(dir);
  const mounts = await readMountInfo(signal);
  return mounts
    .filter(isFuse)
    .filter((m) => m.mountpoint === root || m.mountpoint.startsWith(root + sep))
    .sort((a, b) => b.mountpoint.length - a.mountpoint.length);
}
