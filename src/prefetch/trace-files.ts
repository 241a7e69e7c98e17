// Maps a trace's chunks back to the files whose bytes they hold (via the index entries' dataOffset/size),
// for `ferry trace show`: which files a start touched, and when.
import type { Digest } from '../image/digest.js';
import type { Entry, LayerIndex } from '../image/layer-index.js';
import type { TraceEntry } from './trace.js';

export interface TimelineItem {
  readonly entry: TraceEntry;
  /** Files with bytes in this chunk (a chunk may hold many small files, or a slice of one big one). */
  readonly files: readonly string[];
}

export interface TouchedFile {
  readonly path: string;
  readonly layerDigest: Digest;
  readonly size: number;
  /** First access of the earliest traced chunk holding its bytes. */
  readonly firstAccessMs: number;
}

export interface TraceFiles {
  readonly timeline: readonly TimelineItem[];
  /** In order of first access. */
  readonly files: readonly TouchedFile[];
  /** Trace entries whose layer is not among the indexes. */
  readonly unknown: number;
}

type DataEntry = Entry & { readonly dataOffset: number };

function dataEntries(index: LayerIndex): DataEntry[] {
  return index.entries
    .filter((e): e is DataEntry => e.type === 'file' && e.dataOffset !== undefined && e.size > 0)
    .sort((a, b) => a.dataOffset - b.dataOffset);
}

/** Paths of files overlapping [start, end) of a layer's uncompressed space (binary search, then a scan). */
function filesIn(sorted: readonly DataEntry[], start: number, end: number): DataEntry[] {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const e = sorted[mid]!;
    if (e.dataOffset + e.size <= start) lo = mid + 1;
    else hi = mid;
  }
  const out: DataEntry[] = [];
  for (let i = lo; i < sorted.length && sorted[i]!.dataOffset < end; i++) out.push(sorted[i]!);
  return out;
}

export function traceFiles(entries: readonly TraceEntry[], indexes: readonly LayerIndex[]): TraceFiles {
  const layers = new Map<Digest, { index: LayerIndex; sorted: DataEntry[] | undefined }>();
  for (const index of indexes) layers.set(index.layerDigest, { index, sorted: undefined });
  const timeline: TimelineItem[] = [];
  const touched = new Map<string, TouchedFile>();
  let unknown = 0;
  for (const entry of entries) {
    const layer = layers.get(entry.layerDigest);
    const chunk = layer?.index.chunks[entry.chunkIndex];
    if (layer === undefined || chunk === undefined) {
      unknown++;
      timeline.push({ entry, files: [] });
      continue;
    }
    layer.sorted ??= dataEntries(layer.index);
    const files = filesIn(layer.sorted, chunk.offset, chunk.offset + chunk.size);
    timeline.push({ entry, files: files.map((f) => f.path) });
    for (const f of files) {
      const key = `${entry.layerDigest}/${f.path}`;
      const had = touched.get(key);
      if (had === undefined || had.firstAccessMs > entry.firstAccessMs) {
        const file = { path: f.path, layerDigest: entry.layerDigest, size: f.size };
        touched.set(key, { ...file, firstAccessMs: entry.firstAccessMs });
      }
    }
  }
  const files = [...touched.values()].sort((a, b) => a.firstAccessMs - b.firstAccessMs);
  return { timeline, files, unknown };
}
