// What a locally built index depends on besides the blob: the builder's parameters. Built indexes are stored
// under a tag of them, so a node whose parameters change builds again instead of serving another chunking.
import { createHash } from 'node:crypto';
import { DEFAULT_PACK_SIZE_BYTES } from '../image/layer-index.js';

/** The builder's parameters (a new one added here joins the tag by itself). */
export interface BuildParams {
  readonly chunkSizeBytes: number;
  readonly spanBytes: number;
  /** Small files share chunks up to this size (a code default today). */
  readonly packSizeBytes?: number;
}

/** 16 hex digits of SHA-256 over the parameters as a whole (keys sorted, code defaults filled in). */
export function buildTag(params: BuildParams): string {
  const all: Record<string, unknown> = { packSizeBytes: DEFAULT_PACK_SIZE_BYTES, ...params };
  const canonical = JSON.stringify(
    Object.keys(all)
      .sort()
      .map((k) => [k, all[k]]),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}
