// Layers mounted by this process with fuse-native (libfuse 2): they die with it. fuse-native is loaded on the
// first mount, so a daemon on the default engine never loads the native binding.
import type { LayerReader } from '../layer/layer-reader.js';
import type { LayerTree } from '../layer/layer-tree.js';
import type { Logger } from '../log.js';
import type { FuseTimings } from '../config/resolve.js';
import type { MountedLayer } from './mount.js';

export class NativeMounter {
  readonly keepsMounts = false;
  readonly holderPid = undefined;
  readonly snapshotsSocket = undefined;

  constructor(private readonly o: { log: Logger; timings: FuseTimings }) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  inherited(): string[] {
    return [];
  }

  async mount(l: { mountpoint: string; tree: LayerTree; reader: LayerReader }): Promise<MountedLayer> {
    const { mountLayer } = await import('./mount.js');
    return mountLayer({
      mountpoint: l.mountpoint,
      tree: l.tree,
      reader: l.reader,
      log: this.o.log,
      timings: this.o.timings,
    });
  }

  releaseInherited(): Promise<boolean> {
    return Promise.resolve(false);
  }

  releaseUnclaimed(): Promise<void> {
    return Promise.resolve();
  }

  close(detach: () => Promise<void>): Promise<void> {
    return detach();
  }
}
