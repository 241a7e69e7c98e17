// An image's start set from what the mount already has: its image config (Entrypoint, Cmd, Env, WorkingDir)
// and its layer indexes. Never fails a mount: anything missing or malformed yields a smaller (or empty) set.
import { parseRunConfig } from '../image/image-config.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import type { ChunkRequest } from '../source/chunk-source.js';
import { resolveStartSet, type StartSet } from './start-set.js';

export const EMPTY_START_SET: StartSet = { files: [], chunks: [], bytes: 0 };

export async function imageStartSet(o: {
  registry: RegistryClient;
  image: ResolvedImage;
  /** Bottom layer first. */
  indexes: readonly LayerIndex[];
  budgetBytes: number;
  fetch: (req: ChunkRequest) => Promise<Buffer>;
  log: Logger;
  signal: AbortSignal;
}): Promise<StartSet> {
  if (o.budgetBytes <= 0 || o.indexes.length === 0) return EMPTY_START_SET;
  let config: Buffer;
  try {
    config = await o.registry.imageConfig(o.image, o.signal);
  } catch (e) {
    if (!o.signal.aborted) o.log.debug({ err: e }, 'start set: cannot fetch the image config');
    return EMPTY_START_SET;
  }
  let run;
  try {
    run = parseRunConfig(config, `image ${o.image.ref.toString()}`);
  } catch (e) {
    o.log.debug({ err: e }, 'start set: the image config has no usable command');
    return EMPTY_START_SET;
  }
  const set = await resolveStartSet({
    indexes: o.indexes,
    run,
    budgetBytes: o.budgetBytes,
    fetch: o.fetch,
    log: o.log,
  });
  o.log.debug({ files: set.files, bytes: set.bytes }, 'start set resolved');
  return set;
}
