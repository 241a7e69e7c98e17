// Kernel mounts Ferry makes besides FUSE: the read-only overlay over layer mounts, unmounting, mountinfo.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { FerryError } from '../errors.js';
import { readMountInfo } from '../fuse/stale.js';

const run = promisify(execFile);

/**
 * Stacks read-only lower dirs (top first) at `target`. Overlay needs two lowers without an upper dir. Without
 * `suidDev`, nosuid,nodev: setuid bits and device nodes in the layers grant nothing.
 */
export async function mountReadOnlyOverlay(
  lowerTopFirst: readonly string[],
  target: string,
  opts: { suidDev?: boolean } = {},
): Promise<void> {
  if (lowerTopFirst.length < 2)
    throw new FerryError('INVALID_ARGUMENT', 'overlay needs at least two lower dirs');
  for (const d of lowerTopFirst) {
    if (/[,:\\]/.test(d))
      throw new FerryError('INVALID_ARGUMENT', `overlay lower dir has a reserved char: ${d}`);
  }
  const options = [
    ...(opts.suidDev === true ? [] : ['nosuid', 'nodev']),
    `lowerdir=${lowerTopFirst.join(':')}`,
  ].join(',');
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', options, target]);
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr ?? '';
    throw new FerryError('INTERNAL', `overlay mount at ${target} failed: ${stderr.trim() || String(e)}`, {
      cause: e,
    });
  }
}

/** Unmounts `target`; lazily (detach) when `lazy`. A path that is not mounted is not an error. */
export async function unmount(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  if (!(await isMountPoint(target))) return;
  try {
    await run('umount', opts.lazy === true ? ['-l', target] : [target]);
  } catch (e) {
    if (!(await isMountPoint(target))) return;
    const stderr = (e as { stderr?: string }).stderr ?? '';
    throw new FerryError('UNAVAILABLE', `umount ${target} failed: ${stderr.trim() || String(e)}`, {
      cause: e,
    });
  }
}

export async function isMountPoint(path: string): Promise<boolean> {
  const clean = resolve(path);
  return (await readMountInfo()).some((m) => m.mountpoint === clean);
}
