// Mounts a whole image: one read-only FUSE mount per layer, stacked by a read-only overlay at the target.
import type { FuseTimings } from '../config/resolve.js';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayerIndex } from '../image/layer-index.js';
import type { Logger } from '../log.js';
import type { ChunkSource } from '../source/chunk-source.js';
import { LayerReader, type ChunkReadHook } from '../layer/layer-reader.js';
import { LayerTree } from '../layer/layer-tree.js';
import { mountDirectLayer } from '../fuse/raw/direct-layer.js';
import { mountReadOnlyOverlay } from './system-mount.js';
import { unmount } from '../os/unmount.js';
// read-ahead options (src/layer/read-ahead*.ts)
import { ReadAheadBudget } from '../layer/read-ahead-budget.js';
import { DEFAULT_READ_AHEAD_SETTINGS, type ReadAheadSettings } from '../layer/read-ahead.js';

/** The `[readAhead]` config section's shape; `memoryBytes` bounds read-ahead in flight across all layers. */
export interface ImageReadAheadOptions extends ReadAheadSettings {
  enabled: boolean;
  memoryBytes: number;
}

export interface ImageMountOptions {
  target: string;
  /** Scratch dir for the layer mount points (e.g. /run/ferry/mnt/<id>); made 0700 (only root walks it). */
  workDir: string;
  /**
   * Honour setuid/setgid bits and device nodes on every mount (default false: nosuid,nodev, so mounting an
   * image to look at it cannot give a local user a setuid binary or a raw device of that image).
   */
  suidDev?: boolean;
  /** Bottom layer first, as in the manifest. */
  indexes: readonly LayerIndex[];
  source: ChunkSource;
  log: Logger;
  timings: FuseTimings;
  /** The FUSE server (config `fuse.engine`): Ferry's raw server in this process (default) or fuse-native. */
  engine?: 'raw' | 'fuse-native';
  onChunkRead?: ChunkReadHook;
  /** Sequential read-ahead (config `[readAhead]`); defaults to on with the default settings. */
  readAhead?: ImageReadAheadOptions;
}

/** One mounted layer of an image, whichever FUSE server serves it. */
export interface ImageLayerMount {
  readonly mountpoint: string;
  unmount(): Promise<void>;
}

export interface MountedImage {
  readonly target: string;
  readonly layers: readonly ImageLayerMount[];
  readonly readers: readonly LayerReader[];
  unmount(): Promise<void>;
}

export async function mountImage(o: ImageMountOptions): Promise<MountedImage> {
  const layers: ImageLayerMount[] = [];
  const readers: LayerReader[] = [];
  const cleanup = async (): Promise<void> => {
    await unmount(o.target).catch(() => unmount(o.target, { lazy: true }));
    for (const l of layers.reverse()) await l.unmount().catch(() => undefined);
    await rm(o.workDir, { recursive: true, force: true }).catch(() => undefined);
  };
  const ra = o.readAhead ?? { enabled: true, memoryBytes: 64 * 1024 * 1024, ...DEFAULT_READ_AHEAD_SETTINGS };
  const readAhead = ra.enabled
    ? { settings: ra, budget: new ReadAheadBudget({ maxBytes: ra.memoryBytes }) }
    : undefined;
  try {
    await mkdir(o.target, { recursive: true });
    await mkdir(o.workDir, { recursive: true, mode: 0o700 });
    await chmod(o.workDir, 0o700); // mkdir leaves an existing dir's mode alone
    // Layers mount side by side (each is a tree build and a mount(8) run); `layers` keeps manifest order.
    const settled = await Promise.allSettled(
      o.indexes.map(async (index, i) => {
        const reader = new LayerReader({
          index,
          source: o.source,
          ...(o.onChunkRead !== undefined ? { onChunkRead: o.onChunkRead } : {}),
          ...(readAhead !== undefined ? { readAhead } : {}),
        });
        readers[i] = reader;
        const layer = {
          mountpoint: join(o.workDir, String(i)),
          tree: LayerTree.fromIndex(index),
          reader,
          log: o.log,
          timings: o.timings,
          suidDev: o.suidDev ?? false,
        };
        // fuse-native (a native binding) is loaded only when chosen.
        return o.engine === 'fuse-native'
          ? (await import('../fuse/mount.js')).mountLayer(layer)
          : mountDirectLayer(layer);
      }),
    );
    for (const s of settled) if (s.status === 'fulfilled') layers.push(s.value);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const lowers = layers.map((l) => l.mountpoint).reverse();
    if (lowers.length < 2) {
      // Overlay needs two lowers without an upper dir; an empty one changes nothing.
      const empty = join(o.workDir, 'empty');
      await mkdir(empty, { recursive: true });
      lowers.push(empty);
    }
    await mountReadOnlyOverlay(lowers, o.target, { suidDev: o.suidDev ?? false });
  } catch (e) {
    await cleanup();
    throw e;
  }
  let unmounting: Promise<void> | undefined;
  return {
    target: o.target,
    layers,
    readers,
    unmount: () => (unmounting ??= cleanup()),
  };
}
