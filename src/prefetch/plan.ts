// Prefetch planning: turns a trace (or, without one, the image's start set) into an ordered list of chunk
// requests over the image's layer indexes, within a byte budget, plus optional background completion of layers.
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { ChunkRequest } from '../source/chunk-source.js';
import type { TraceEntry } from './trace.js';

export type BackgroundMode = 'none' | 'trace' | 'all';
export type PlanPhase = 'trace' | 'default' | 'background';

export interface PlanItem {
  readonly req: ChunkRequest;
  readonly digest: Digest;
  readonly size: number;
  readonly phase: PlanPhase;
}

export interface PrefetchPlan {
  readonly items: readonly PlanItem[];
  /** Trace entries whose layer or chunk no longer exists in the image's indexes. */
  readonly pruned: number;
  /** Trace or default chunks left out because the byte budget ran out. */
  readonly overBudget: number;
}

export interface PlanOptions {
  /** Bottom layer first. */
  indexes: readonly LayerIndex[];
  /** In prefetch order; undefined when the image has no trace. */
  trace?: readonly TraceEntry[] | undefined;
  /** Cap on the trace/default phase; background completion is not counted. */
  budgetBytes: number;
  /** Without a trace: the start set's chunks, in order (see start-set.ts). */
  startSet?: readonly ChunkRequest[] | undefined;
  /** Without a trace, after the start set: this many bytes from the start of each layer's chunks (0: none). */
  defaultBytesPerLayer: number;
  background: BackgroundMode;
}

/** Finds a traced chunk in its layer: by index when the digest still matches, else by digest. */
function resolver(indexes: readonly LayerIndex[]): (e: TraceEntry) => ChunkRequest | undefined {
  const byLayer = new Map<Digest, LayerIndex>();
  for (const ix of indexes) if (!byLayer.has(ix.layerDigest)) byLayer.set(ix.layerDigest, ix);
  const byDigest = new Map<LayerIndex, Map<Digest, number>>();
  return (e) => {
    const index = byLayer.get(e.layerDigest);
    if (index === undefined) return undefined;
    if (index.chunks[e.chunkIndex]?.digest === e.chunkDigest) {
      return { index, chunk: e.chunkIndex, priority: 'prefetch' };
    }
    // The index was rebuilt (other chunk size or tool): chunk numbers moved but digests may still exist.
    let map = byDigest.get(index);
    if (map === undefined) {
      map = new Map(index.chunks.map((c, i) => [c.digest, i]));
      byDigest.set(index, map);
    }
    const chunk = map.get(e.chunkDigest);
    return chunk === undefined ? undefined : { index, chunk, priority: 'prefetch' };
  };
}

export function planPrefetch(o: PlanOptions): PrefetchPlan {
  const items: PlanItem[] = [];
  const planned = new Set<Digest>();
  let bytes = 0;
  let pruned = 0;
  let overBudget = 0;
  let budgetHit = false;
  const add = (req: ChunkRequest, phase: PlanPhase): void => {
    const c = req.index.chunks[req.chunk];
    if (c === undefined || planned.has(c.digest)) return;
    if (phase !== 'background') {
      if (budgetHit || bytes + c.size > o.budgetBytes) {
        // Order matters more than packing: once the budget is hit, later chunks are not squeezed in.
        budgetHit = true;
        overBudget++;
        return;
      }
      bytes += c.size;
    }
    planned.add(c.digest);
    items.push({ req, digest: c.digest, size: c.size, phase });
  };

  const tracedLayers = new Set<LayerIndex>();
  if (o.trace !== undefined) {
    const find = resolver(o.indexes);
    for (const e of o.trace) {
      const req = find(e);
      if (req === undefined) pruned++;
      else {
        tracedLayers.add(req.index);
        add(req, 'trace');
      }
    }
  } else {
    for (const req of o.startSet ?? []) add(req, 'default');
    if (o.defaultBytesPerLayer > 0) {
      for (const index of o.indexes) {
        let taken = 0;
        for (let i = 0; i < index.chunks.length && taken < o.defaultBytesPerLayer; i++) {
          add({ index, chunk: i, priority: 'prefetch' }, 'default');
          taken += index.chunks[i]!.size;
        }
      }
    }
  }

  if (o.background !== 'none') {
    for (const index of o.indexes) {
      if (o.background === 'trace' && !tracedLayers.has(index)) continue;
      for (let i = 0; i < index.chunks.length; i++)
        add({ index, chunk: i, priority: 'prefetch' }, 'background');
    }
  }
  return { items, pruned, overBudget };
}
