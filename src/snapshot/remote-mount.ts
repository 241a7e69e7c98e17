// A lazy mount bounded in time: if the RemoteFileSystem has not mounted within the limit, Prepare falls back,
// and a mount that still completes later is undone so the ordinary snapshot's dir stays a plain dir.
import { DeadlineError } from '../errors.js';
import type { RemoteLayerRef } from './remote-labels.js';
import type { RemoteFileSystem } from './remote-fs.js';
import type { SnapshotUsage } from './types.js';

export async function mountRemote(
  remote: RemoteFileSystem,
  mountpoint: string,
  layer: RemoteLayerRef,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<SnapshotUsage> {
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  let gaveUp = false;
  const mounting = remote.mount(mountpoint, layer, ac.signal);
  try {
    return await Promise.race([
      mounting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          gaveUp = true;
          ac.abort();
          reject(new DeadlineError(`lazy mount of layer ${layer.layerDigest} took over ${timeoutMs} ms`));
        }, timeoutMs);
        timer.unref();
      }),
    ]);
  } catch (e) {
    if (gaveUp) void mounting.then(() => remote.unmount(mountpoint)).catch(() => undefined);
    throw e;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
