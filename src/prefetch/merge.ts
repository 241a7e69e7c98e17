// Merging startup traces into one MergedTrace per image: typical first-access time (EWMA) and frequency
// (EWMA of "appeared in this start") per chunk, ordered by time stretched by rarity, and bounded in size.
import type { Digest } from '../image/digest.js';
import { TRACE_VERSION, type MergedTrace, type MergedTraceEntry, type Trace } from './trace.js';

export interface MergeOptions {
  /** Chunks kept at most; the latest-ranked are dropped. */
  maxEntries: number;
  /** EWMA factor for new observations, in (0, 1]; default 0.3. */
  alpha?: number;
  /** Chunks whose weight decays below this are forgotten; default 0.05. */
  minWeight?: number;
}

/**
 * Prefetch order key: a chunk read at 2 s in half the starts ranks like one read at 4 s in every start. The
 * small offset keeps rarity meaningful for chunks read at the very start.
 */
export function rankKey(e: MergedTraceEntry): number {
  return (e.firstAccessMs + 10) / e.weight;
}

function compare(a: MergedTraceEntry, b: MergedTraceEntry): number {
  return (
    rankKey(a) - rankKey(b) ||
    b.weight - a.weight ||
    (a.layerDigest < b.layerDigest ? -1 : a.layerDigest > b.layerDigest ? 1 : 0) ||
    a.chunkIndex - b.chunkIndex
  );
}

/** Folds one startup into `previous` (undefined: the first startup). Pure; returns a new trace. */
export function mergeTrace(previous: MergedTrace | undefined, startup: Trace, o: MergeOptions): MergedTrace {
  const alpha = o.alpha ?? 0.3;
  const minWeight = o.minWeight ?? 0.05;
  const first = previous === undefined || previous.startups === 0;
  const byChunk = new Map<Digest, MergedTraceEntry>();
  for (const e of previous?.entries ?? []) byChunk.set(e.chunkDigest, e);

  const seenNow = new Set<Digest>();
  for (const e of startup.entries) {
    // The same chunk may sit in two layers; the first access (entries are in order) wins.
    if (seenNow.has(e.chunkDigest)) continue;
    seenNow.add(e.chunkDigest);
    const old = byChunk.get(e.chunkDigest);
    byChunk.set(
      e.chunkDigest,
      old === undefined
        ? { ...e, seen: 1, weight: first ? 1 : alpha }
        : {
            ...e,
            firstAccessMs: old.firstAccessMs * (1 - alpha) + e.firstAccessMs * alpha,
            seen: old.seen + 1,
            weight: Math.min(1, old.weight * (1 - alpha) + alpha),
          },
    );
  }
  const entries: MergedTraceEntry[] = [];
  for (const e of byChunk.values()) {
    if (seenNow.has(e.chunkDigest)) entries.push(e);
    else {
      const weight = e.weight * (1 - alpha);
      if (weight >= minWeight) entries.push({ ...e, weight });
    }
  }
  entries.sort(compare);
  if (entries.length > o.maxEntries) entries.length = o.maxEntries;
  return {
    version: TRACE_VERSION,
    manifestDigest: startup.manifestDigest,
    ...(startup.workloadKey !== undefined ? { workloadKey: startup.workloadKey } : {}),
    startups: (previous?.startups ?? 0) + 1,
    updatedAt: new Date().toISOString(),
    entries,
  };
}

/** A single startup as a MergedTrace (what a first start stores). */
export function asMerged(startup: Trace, o: MergeOptions): MergedTrace {
  return mergeTrace(undefined, startup, o);
}
