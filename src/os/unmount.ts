// Unmounting, all ways Ferry does it: `fusermount -uz` for FUSE mounts (no libfuse binding needed), `umount` for
// the overlay and for raw FUSE mounts the holder made, lazily when asked.
import { resolve } from 'node:path';
import { AbortedError, FerryError, UnavailableError } from '../errors.js';
import { isMountPoint } from './mountinfo.js';
import { run, runChecked } from './run.js';

/** `fusermount -uz <dir>`: detach now, release when the last user goes (a busy or dead mount still goes). */
export async function lazyUnmount(dir: string, signal?: AbortSignal): Promise<void> {
  await runChecked('fusermount', ['-uz', dir], { signal });
}

/** Unmounts `target`; lazily (detach) when `lazy`. A path that is not mounted is not an error. */
export async function unmount(target: string, opts: { lazy?: boolean } = {}): Promise<void> {
  if (!(await isMountPoint(target))) return;
  const r = await run('umount', opts.lazy === true ? ['-l', target] : [target]).catch((e: unknown) => ({
    code: -1,
    output: String(e),
  }));
  if (r.code === 0 || !(await isMountPoint(target))) return;
  throw new FerryError('UNAVAILABLE', `umount ${target} failed: ${r.output}`);
}

/** `umount -l <mountpoint>`: detaches now; the kernel ends the connection when the last user leaves. */
export async function unmountFuse(mountpoint: string, signal?: AbortSignal): Promise<void> {
  const mnt = resolve(mountpoint);
  let r;
  try {
    r = await run('umount', ['-l', mnt], { signal });
  } catch (e) {
    if (signal?.aborted) throw new AbortedError(`unmount of ${mnt} aborted`, { cause: e });
    throw new UnavailableError(`cannot unmount ${mnt}: ${String(e)}`, { cause: e });
  }
  if (r.code !== 0) throw new UnavailableError(`cannot unmount ${mnt}: umount exited ${r.code}: ${r.output}`);
}
