// One layer served by the raw FUSE server in this process (`ferry mount`): this process holds the /dev/fuse
// descriptor, reads requests on the libuv pool and writes replies itself; the mount lives as long as we do.
import { mkdir } from 'node:fs/promises';
import { UnavailableError } from '../../errors.js';
import {
  abortFuseConnection,
  closeDevice,
  fuseConnectionOf,
  mountFuseDevice,
  readRequests,
  setReadAhead,
  unmountFuse,
  writeToDevice,
} from './device.js';
import { createRawLayerServer, type RawLayerServer, type RawLayerServerOptions } from './layer-server.js';
import { MAX_READ_BYTES } from './protocol.js';
import { poolThreadsAsked } from '../../os/threadpool.js';

export type DirectLayerOptions = RawLayerServerOptions & {
  mountpoint: string;
  /** Honour setuid/setgid bits and device nodes (default false: `ferry mount` of an image to inspect). */
  suidDev?: boolean;
};

export interface DirectLayer {
  readonly mountpoint: string;
  readonly server: RawLayerServer;
  unmount(): Promise<void>;
}

/** The mount(8) options of a raw layer mount; the holder's (containers' layers) keep suid and dev. */
export function rawMountOptions(suidDev: boolean): readonly string[] {
  return [
    'ro', // the kernel refuses every write with EROFS before it reaches us
    'allow_other', // overlay and container processes read it
    'default_permissions', // the kernel checks permission bits, as for a normal filesystem
    ...(suidDev ? ['suid', 'dev'] : ['nosuid', 'nodev']),
    `max_read=${MAX_READ_BYTES}`,
  ];
}

/** Container layers (the FUSE holder): setuid binaries and device nodes work, as with containerd's overlay. */
export const RAW_MOUNT_OPTIONS: readonly string[] = rawMountOptions(true);

/** Direct mounts of this process: each parks one libuv pool thread in a blocking read. */
let active = 0;
/** Pool threads left for everything else (disk cache, hashing, zlib): with none, the process deadlocks. */
const SPARE_POOL_THREADS = 2;

export async function mountDirectLayer(o: DirectLayerOptions): Promise<DirectLayer> {
  const pool = poolThreadsAsked();
  if (active + 1 + SPARE_POOL_THREADS > pool)
    throw new UnavailableError(
      `cannot serve layer ${o.tree.index.layerDigest} at ${o.mountpoint}: ${active + 1} raw FUSE mounts need ` +
        `UV_THREADPOOL_SIZE >= ${active + 1 + SPARE_POOL_THREADS} set before Node starts (bin/ferry.js sets it)`,
    );
  active++; // counted before the first await: layers of an image mount side by side
  const server = createRawLayerServer(o);
  let fd: number;
  try {
    await mkdir(o.mountpoint, { recursive: true });
    fd = await mountFuseDevice({
      mountpoint: o.mountpoint,
      fsname: 'ferry',
      subtype: 'ferry', // fstype fuse.ferry: our mounts are recognisable in /proc/self/mountinfo
      options: rawMountOptions(o.suidDev ?? false),
    });
  } catch (e) {
    active--;
    server.close();
    throw e;
  }
  const loop = readRequests(fd, (request) => {
    void server.handle(request).then((reply) => {
      if (reply === undefined) return;
      try {
        writeToDevice(fd, reply);
      } catch (e) {
        o.log.warn({ mountpoint: o.mountpoint, err: String(e) }, 'kernel refused a FUSE reply');
      }
    });
  });
  await setReadAhead(o.mountpoint, MAX_READ_BYTES).catch((e: unknown) =>
    o.log.warn({ mountpoint: o.mountpoint, err: String(e) }, 'kernel read-ahead not raised; 128 KiB READs'),
  );
  o.log.info({ mountpoint: o.mountpoint, layer: o.tree.index.layerDigest }, 'layer mounted');

  let unmounting: Promise<void> | undefined;
  return {
    mountpoint: o.mountpoint,
    server,
    unmount() {
      unmounting ??= (async () => {
        server.close(); // reads in flight answer EIO now
        const connection = await fuseConnectionOf(o.mountpoint).catch(() => undefined);
        await unmountFuse(o.mountpoint).catch((e: unknown) =>
          o.log.warn({ mountpoint: o.mountpoint, err: String(e) }, 'lazy unmount failed'),
        );
        // A mount still busy (an overlay above it, an open file) keeps the connection after a lazy unmount:
        // aborting it ends our blocked read, and its users get ENOTCONN rather than a wait on a dead process.
        if (connection !== undefined) await abortFuseConnection(connection).catch(() => false);
        await loop.catch(() => undefined);
        active--;
        closeDevice(fd);
        o.log.info({ mountpoint: o.mountpoint, layer: o.tree.index.layerDigest }, 'layer unmounted');
      })();
      return unmounting;
    },
  };
}
