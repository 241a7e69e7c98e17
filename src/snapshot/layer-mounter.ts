// How LazyLayerFs puts a layer's tree on a mountpoint, whichever FUSE engine does it: the daemon picks an
// implementation (src/fuse/holder-mounter.ts through the FUSE holder, src/fuse/native-mounter.ts in-process).
import type { LayerReader } from '../layer/layer-reader.js';
import type { LayerTree } from '../layer/layer-tree.js';

/** A mounted layer, whichever engine serves it. */
export interface ServedLayer {
  unmount(): Promise<void>;
  /** Mounts kept by a holder only: stop serving, keep the mount for the next daemon. */
  detach?(drainMs: number): Promise<void>;
}

export interface LayerToMount {
  mountpoint: string;
  imageRef: string;
  tree: LayerTree;
  reader: LayerReader;
}

export interface LayerMounter {
  /** True when mounts outlive this process (stop leaves them to the next daemon rather than unmount them). */
  readonly keepsMounts: boolean;
  /** The process that keeps the mounts, when another one does (status). */
  readonly holderPid: number | undefined;
  /** The snapshots socket kept across daemon restarts, if any (the daemon serves on its `target`). */
  readonly snapshotsSocket: { socket: string; target: string } | undefined;
  /**
   * Learns the mounts a predecessor left; `onLost` is called with the error when every mount died at once (the
   * holder went away), so their owner forgets them.
   */
  start(onLost: (err?: Error) => void, signal?: AbortSignal): Promise<void>;
  /** Mountpoints kept for a predecessor and not yet adopted: never stat them before (the stat would wait on us). */
  inherited(): string[];
  mount(layer: LayerToMount, signal?: AbortSignal): Promise<ServedLayer>;
  /** Unmounts a mount kept for a predecessor and not adopted; false when there is none at `mountpoint`. */
  releaseInherited(mountpoint: string): Promise<boolean>;
  /** After restore: unmounts what was kept for a predecessor and is claimed by no snapshot. */
  releaseUnclaimed(): Promise<void>;
  /**
   * Stop for a restart: runs `detach` (the owner detaches its layers; a lost holder is no news by then), then
   * disconnects, leaving kept mounts to the next daemon.
   */
  close(detach: () => Promise<void>): Promise<void>;
}
