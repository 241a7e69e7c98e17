// The layers a process serves now, by mountpoint: written by whoever mounts them (LazyLayerFs), read by status,
// metrics and the prefetch of mounted images. One object the composition root hands to each.
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';

export interface MountedLayerInfo {
  readonly mountpoint: string;
  readonly imageRef: string;
  readonly index: LayerIndex;
}

export class MountedLayers {
  private readonly byMountpoint = new Map<string, MountedLayerInfo>();

  add(info: MountedLayerInfo): void {
    this.byMountpoint.set(info.mountpoint, info);
  }

  delete(mountpoint: string): void {
    this.byMountpoint.delete(mountpoint);
  }

  list(): MountedLayerInfo[] {
    return [...this.byMountpoint.values()];
  }

  /** The index a mount serves for `layer` (any mount of it: they are all the same layer). */
  index(layer: Digest): LayerIndex | undefined {
    for (const m of this.byMountpoint.values()) if (m.index.layerDigest === layer) return m.index;
    return undefined;
  }
}
