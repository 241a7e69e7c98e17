// One kernel READ of a layer file, as both FUSE front ends serve it: the demand fetch starts first, then the
// read-ahead hook sees it, and a configured deadline turns a stuck fetch into a DeadlineError (EIO).
import { DeadlineError } from '../errors.js';
import type { LayerNode } from '../layer/layer-tree.js';
import type { LayerReader } from '../layer/layer-reader.js';
import { raceDeadline } from '../source/deadline.js';

export interface DemandRead {
  reader: LayerReader;
  node: LayerNode;
  /** The read-ahead key of the open file. */
  fh: number;
  offset: number;
  length: number;
  /** For the deadline's message. */
  path: string;
  readDeadlineMs?: number | undefined;
  signal: AbortSignal;
}

export async function demandRead(r: DemandRead): Promise<Buffer> {
  const parts = await demandReadParts(r);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** demandRead's bytes as views of the chunks they come from (see LayerReader.readFileParts): no copy. */
export function demandReadParts(r: DemandRead): Promise<readonly Buffer[]> {
  const work = r.reader.readFileParts(r.node, r.offset, r.length, r.signal);
  r.reader.readAhead?.onRead(r.fh, r.node, r.offset, r.length);
  const ms = r.readDeadlineMs;
  if (ms === undefined) return work;
  return raceDeadline(
    work,
    ms,
    () =>
      new DeadlineError(
        `read ${r.path} [${r.offset}, +${r.length}) of layer ${r.reader.index.layerDigest} missed its ${ms} ms deadline`,
      ),
  );
}
