// Stale-mount cleanup: finds FUSE mounts under a directory whose server has died (stat → ENOTCONN) and
// detaches them with `fusermount -uz`, so a restarted daemon can mount there again.
import { stat } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { fuseMountsUnder } from '../os/mountinfo.js';
import { lazyUnmount } from '../os/unmount.js';

/**
 * True when the mount's server is gone. Only call for mounts not served by this process. A stat that does not
 * answer within `timeoutMs` means a live server that is slow or waiting (e.g. a FUSE holder with no daemon
 * attached yet): not stale. The stat itself stays pending until the kernel answers it.
 */
export async function isStale(mountpoint: string, timeoutMs = 2_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      stat(mountpoint).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
        timer.unref();
      }),
    ]);
  } catch (e) {
    const code = typeof e === 'object' && e !== null && 'code' in e ? e.code : undefined;
    return code === 'ENOTCONN' || code === 'ECONNABORTED' || code === 'ENXIO';
  } finally {
    clearTimeout(timer);
  }
}

export interface CleanStaleOptions {
  dir: string;
  log: Logger;
  /** Live mounts served through us (held by the FUSE holder): not looked at. */
  skip?: ReadonlySet<string>;
  signal?: AbortSignal;
}

/**
 * Lazily unmounts every dead FUSE mount under `dir` and returns their mountpoints. Run at start-up, before
 * this process mounts anything there: stat'ing a live mount of our own would wait on our own event loop.
 */
export async function cleanStaleMounts(options: CleanStaleOptions): Promise<string[]> {
  const cleaned: string[] = [];
  for (const m of await fuseMountsUnder(options.dir, options.signal)) {
    options.signal?.throwIfAborted();
    if (options.skip?.has(m.mountpoint) === true) continue;
    if (!(await isStale(m.mountpoint))) continue;
    try {
      await lazyUnmount(m.mountpoint, options.signal);
      cleaned.push(m.mountpoint);
      options.log.info({ mountpoint: m.mountpoint }, 'stale FUSE mount detached');
    } catch (e) {
      options.log.warn({ err: e, mountpoint: m.mountpoint }, 'stale FUSE mount could not be detached');
    }
  }
  return cleaned;
}
