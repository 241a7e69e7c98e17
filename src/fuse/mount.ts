// mountLayer: mounts one layer's tree read-only with fuse-native (use_ino, suid, dev, kernel_cache, caching
// timeouts) and returns a handle whose unmount() is lazy and idempotent.
import Fuse from 'fuse-native';
import { mkdir } from 'node:fs/promises';
import type { FuseTimings } from '../config/resolve.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LayerReader } from '../layer/layer-reader.js';
import type { LayerTree } from '../layer/layer-tree.js';
import { lazyUnmount } from '../os/unmount.js';
import { createLayerOps, type LayerOps } from './ops.js';

export interface MountLayerOptions {
  mountpoint: string;
  tree: LayerTree;
  reader: LayerReader;
  log: Logger;
  /** The read deadline (EIO past it; the fetch continues for the cache) and the kernel's cache timeouts. */
  timings: FuseTimings;
  maxReadaheadBytes?: number;
  /** Required for overlay and container processes (default true). */
  allowOther?: boolean;
  /** Keep the page cache across opens: layers are immutable (default true). */
  kernelCache?: boolean;
  /** Let the kernel check permission bits, as for a normal filesystem (default true). */
  defaultPermissions?: boolean;
  /**
   * Honour setuid/setgid bits and device nodes (default true: containers need them; `ferry mount` passes
   * false so an inspected image cannot hand local users a setuid binary or a raw device).
   */
  suidDev?: boolean;
  /** Give up on a mount that has not come up within this long (default 10 s). */
  mountTimeoutMs?: number;
  debug?: boolean;
}

export interface MountedLayer {
  readonly mountpoint: string;
  readonly ops: LayerOps;
  unmount(): Promise<void>;
}

interface ExtraOptions {
  timings: FuseTimings;
  maxReadaheadBytes: number;
  suidDev: boolean;
}

/** fuse-native forwards only some libfuse options to libfuse; the rest are appended here. */
class FerryFuse extends Fuse {
  constructor(
    mnt: string,
    ops: LayerOps['ops'],
    opts: ConstructorParameters<typeof Fuse>[2],
    private readonly extra: ExtraOptions,
  ) {
    super(mnt, ops, opts);
  }

  protected override _fuseOptions(): string {
    const base = super._fuseOptions();
    const extras = [
      'ro', // the kernel refuses every write with EROFS before it reaches us
      'use_ino',
      ...(this.extra.suidDev ? ['suid', 'dev'] : ['nosuid', 'nodev']),
      // Set here rather than via attrTimeout/entryTimeout because fuse-native drops falsy values such as 0.
      `attr_timeout=${this.extra.timings.attrTimeoutMs / 1000}`,
      `entry_timeout=${this.extra.timings.entryTimeoutMs / 1000}`,
      `negative_timeout=${this.extra.timings.negativeTimeoutMs / 1000}`,
      `max_readahead=${this.extra.maxReadaheadBytes}`,
    ].join(',');
    return base === '' ? `-o${extras}` : `${base},${extras}`;
  }
}

function callback(run: (cb: (err: Error | null) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => run((err) => (err ? reject(err) : resolve())));
}

export async function mountLayer(options: MountLayerOptions): Promise<MountedLayer> {
  const { mountpoint, tree, log } = options;
  const layerOps = createLayerOps({
    tree,
    reader: options.reader,
    log,
    readDeadlineMs: options.timings.readDeadlineMs,
  });
  await mkdir(mountpoint, { recursive: true });
  const fuse = new FerryFuse(
    mountpoint,
    layerOps.ops,
    {
      allowOther: options.allowOther ?? true,
      kernelCache: options.kernelCache ?? true,
      defaultPermissions: options.defaultPermissions ?? true,
      fsname: 'ferry',
      subtype: 'ferry', // fstype fuse.ferry: our mounts are recognisable in /proc/self/mountinfo
      timeout: false, // lazy fetches may be slow; readDeadlineMs bounds reads instead
      debug: options.debug ?? false,
    },
    {
      timings: options.timings,
      maxReadaheadBytes: options.maxReadaheadBytes ?? 1024 * 1024,
      suidDev: options.suidDev ?? true,
    },
  );

  const timeoutMs = options.mountTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    await Promise.race([
      callback((cb) => fuse.mount(cb)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(
            new UnavailableError(`FUSE mount of layer ${tree.index.layerDigest} at ${mountpoint} timed out`),
          );
        }, timeoutMs);
        timer.unref();
      }),
    ]);
  } catch (e) {
    layerOps.close();
    // Only a mount that timed out may be half-up; a refused mount (e.g. "Mountpoint in use") must not
    // detach whatever already lives at that path.
    if (timedOut) await lazyUnmount(mountpoint).catch(() => undefined);
    throw new UnavailableError(
      `cannot mount layer ${tree.index.layerDigest} at ${mountpoint}: ${String(e)}`,
      {
        cause: e,
      },
    );
  } finally {
    clearTimeout(timer);
  }
  log.info({ mountpoint, layer: tree.index.layerDigest }, 'layer mounted');

  let unmounting: Promise<void> | undefined;
  return {
    mountpoint,
    ops: layerOps,
    unmount(): Promise<void> {
      unmounting ??= (async () => {
        layerOps.close();
        try {
          await callback((cb) => fuse.unmount(cb));
        } catch (e) {
          // fuse-native's unmount runs fusermount -uz first; if that failed, try once more ourselves.
          log.warn({ err: e, mountpoint }, 'fuse unmount failed; retrying lazily');
          await lazyUnmount(mountpoint);
        }
        log.info({ mountpoint, layer: tree.index.layerDigest }, 'layer unmounted');
      })();
      return unmounting;
    },
  };
}
