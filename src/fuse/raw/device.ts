// The raw /dev/fuse descriptor: opening and mounting it with mount(8) `-o fd=3` (no fusermount, no native code),
// the blocking request read loop, reply writes, lazy unmount and connection abort through fusectl.
import { close, open, read, writeSync, writevSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AbortedError, UnavailableError } from '../../errors.js';
import { isFuse, readMountInfo } from '../../os/mountinfo.js';
import { run, type RunResult } from '../../os/run.js';
import { REQUEST_BUFFER_BYTES, type FuseReply } from './protocol.js';

export interface FuseMountOptions {
  mountpoint: string;
  fsname: string;
  subtype: string;
  /** Extra -o options, e.g. ['allow_other','default_permissions','ro','max_read=1048576']. */
  options: readonly string[];
}

function openDevice(): Promise<number> {
  return new Promise((res, rej) => open('/dev/fuse', 'r+', (err, fd) => (err ? rej(err) : res(fd))));
}

function closeQuietly(fd: number): void {
  close(fd, () => undefined);
}

/** mount(8)'s -o list is comma separated; a comma or newline in a value would inject options. */
function checkOption(value: string, what: string, mountpoint: string): void {
  if (/[,\n]/.test(value) || value === '')
    throw new UnavailableError(`cannot mount ${mountpoint}: bad ${what} ${JSON.stringify(value)}`);
}

/**
 * Opens /dev/fuse and mounts it: `mount -i -t fuse.<subtype> -o fd=3,rootmode=40000,user_id=0,group_id=0,<options>
 * <fsname> <mountpoint>` with the descriptor inherited as the child's fd 3 (no fusermount, no native code; needs
 * CAP_SYS_ADMIN). `-i` skips the mount.fuse helper. Returns the descriptor; on failure closes it and throws
 * UnavailableError naming the mountpoint.
 */
export async function mountFuseDevice(o: FuseMountOptions, signal?: AbortSignal): Promise<number> {
  const mountpoint = resolve(o.mountpoint);
  checkOption(o.subtype, 'subtype', mountpoint);
  for (const opt of o.options) checkOption(opt, 'option', mountpoint);
  if (o.fsname === '')
    throw new UnavailableError(`cannot mount ${mountpoint}: bad fsname ${JSON.stringify(o.fsname)}`);
  if (signal?.aborted) throw new AbortedError(`mount of ${mountpoint} aborted`);
  let fd: number;
  try {
    fd = await openDevice();
  } catch (e) {
    throw new UnavailableError(`cannot mount ${mountpoint}: open /dev/fuse: ${String(e)}`, { cause: e });
  }
  const opts = ['fd=3', 'rootmode=40000', 'user_id=0', 'group_id=0', ...o.options].join(',');
  const args = ['-i', '-t', `fuse.${o.subtype}`, '-o', opts, o.fsname, mountpoint];
  let r: RunResult;
  try {
    r = await run('mount', args, { stdio: ['ignore', 'pipe', 'pipe', fd], signal });
  } catch (e) {
    closeQuietly(fd);
    if (signal?.aborted) throw new AbortedError(`mount of ${mountpoint} aborted`, { cause: e });
    throw new UnavailableError(`cannot mount ${mountpoint}: ${String(e)}`, { cause: e });
  }
  if (r.code !== 0) {
    closeQuietly(fd);
    throw new UnavailableError(`cannot mount ${mountpoint}: mount exited ${r.code}: ${r.output}`);
  }
  return fd;
}

/**
 * Reads requests until the connection ends (ENODEV after unmount/abort → resolves); EINTR/EAGAIN retried.
 * Reads run on the libuv pool (fs.read), so each mount ties one pool thread for as long as it lives; each
 * request is copied out of one reused buffer, so `onRequest` may keep it.
 */
export function readRequests(fd: number, onRequest: (req: Buffer) => void): Promise<void> {
  const buf = Buffer.allocUnsafe(REQUEST_BUFFER_BYTES);
  return new Promise((res, rej) => {
    const next = (): void => {
      read(fd, buf, 0, buf.length, null, (err, n) => {
        if (err !== null) {
          const code = err.code;
          if (code === 'EINTR' || code === 'EAGAIN') return next();
          if (code === 'ENODEV') return res();
          return rej(err);
        }
        if (n === 0) return res();
        // Hand the copy over before the next read can overwrite the buffer.
        const req = Buffer.from(buf.subarray(0, n));
        try {
          onRequest(req);
        } finally {
          next();
        }
      });
    };
    next();
  });
}

/**
 * Writes one reply/notification. false when the kernel no longer waits for it (ENOENT: interrupted or aborted);
 * other errors throw. Synchronous on purpose: a /dev/fuse write never waits for I/O (the kernel copies the
 * reply into the waiting request and returns), and the libuv pool threads are all taken by the blocking reads,
 * so an async fs.write could queue behind them forever.
 */
export function writeToDevice(fd: number, frame: FuseReply): boolean {
  try {
    // One write(2) per reply: the kernel takes a reply whole (writev gathers the pieces without a copy).
    if (Buffer.isBuffer(frame)) writeSync(fd, frame);
    else writevSync(fd, frame);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

export { unmountFuse } from '../../os/unmount.js';

/**
 * The FUSE connection number of the mount at `mountpoint` (its anonymous device minor, the name of its
 * /sys/fs/fuse/connections entry), read from /proc/self/mountinfo so the filesystem itself is not touched
 * (a stat would wait for INIT). undefined when nothing is mounted there.
 */
export async function fuseConnectionOf(
  mountpoint: string,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const mnt = resolve(mountpoint);
  let found: number | undefined;
  for (const m of await readMountInfo(signal)) {
    if (m.mountpoint !== mnt || !isFuse(m)) continue;
    const d = /^0:(\d+)$/.exec(m.device);
    if (d) found = Number(d[1]); // the last one wins: it is the top of the mount stack
  }
  return found;
}

/**
 * Aborts a FUSE connection (fusectl): every waiting request fails with ENOTCONN and the read loop ends with
 * ENODEV. Used after a lazy unmount that left the mount busy, since closing the descriptor alone cannot wake a
 * read blocked on it. false when the connection is already gone.
 */
export async function abortFuseConnection(connection: number): Promise<boolean> {
  try {
    await writeFile(`/sys/fs/fuse/connections/${connection}/abort`, '1');
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * Sets the kernel read-ahead of the FUSE mount at `mountpoint` (its bdi, /sys/class/bdi/0:<n>/read_ahead_kb;
 * 128 KiB by default). Larger read-ahead means fewer, larger READs of sequentially read files: each READ is a
 * round trip through the holder. false when the mount or its bdi is gone.
 */
export async function setReadAhead(mountpoint: string, bytes: number): Promise<boolean> {
  const connection = await fuseConnectionOf(mountpoint);
  if (connection === undefined) return false;
  try {
    await writeFile(`/sys/class/bdi/0:${connection}/read_ahead_kb`, String(Math.floor(bytes / 1024)));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Closes a descriptor, ignoring errors (the read loop has ended, nothing else uses it). */
export function closeDevice(fd: number): void {
  closeQuietly(fd);
}
