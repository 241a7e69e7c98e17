// The boundary between snapshot semantics and lazy layers: mount a layer at a directory, check it still
// serves, unmount it. The FUSE implementation lives in lazy-layer-fs.ts; tests use fakes.
import { IntegrityError } from '../errors.js';
import type { RemoteLayerRef } from './remote-labels.js';
import type { SnapshotUsage } from './types.js';

export interface RemoteFileSystem {
  /** Mounts the layer read-only at `mountpoint` (an existing empty dir); resolves once it serves. */
  mount(mountpoint: string, layer: RemoteLayerRef, signal?: AbortSignal): Promise<SnapshotUsage>;
  /** Throws UnavailableError when the layer at `mountpoint` no longer serves (or was never mounted). */
  check(mountpoint: string, signal?: AbortSignal): Promise<void>;
  /** Unmounts; a mountpoint this filesystem does not hold is not an error. */
  unmount(mountpoint: string, signal?: AbortSignal): Promise<void>;
  /**
   * Writes the layer mounted at `mountpoint` out as a plain directory `dest` (overlay lower-layer format, bytes
   * verified). Without `fetchMissing`, 'incomplete' (nothing written) when a chunk is not local yet.
   */
  materialise?(
    mountpoint: string,
    dest: string,
    o: { fetchMissing: boolean },
    signal?: AbortSignal,
  ): Promise<'done' | 'incomplete'>;
  /** True when a mount at `mountpoint` is kept for running containers (e.g. by the FUSE holder across restarts). */
  holds?(mountpoint: string): boolean;
}

/**
 * How a mount's `verified` fails when the layer's blob comes back wrong from every repository known to hold it
 * (the bytes, not the index: that is an audit's finding).
 */
export class BadBytesError extends IntegrityError {
  constructor(layer: string, cause: unknown) {
    super(`layer ${layer}: no repository holding it gives bytes its digests commit to: ${String(cause)}`, {
      cause,
    });
  }
}
