// ReadAhead: the I/O half of sequential read-ahead for one layer. Per open file handle it feeds reads to a
// ReadAheadPolicy and starts the chunk fetches it asks for through the ChunkSource (so they land in the cache
// and dedupe with demand reads), under the shared ReadAheadBudget; it keeps per-file stats for status.
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { chunksCovering, type LayerIndex } from '../image/layer-index.js';
import type { ChunkSource } from '../source/chunk-source.js';
import type { LayerNode } from './layer-tree.js';
import type { ReadAheadBudget } from './read-ahead-budget.js';
import { ReadAheadPolicy, type FileChunkSpan, type ReadAheadFetch } from './read-ahead-policy.js';

const MiB = 1024 * 1024;

export interface ReadAheadSettings {
  minWindowBytes: number;
  maxWindowBytes: number;
  /** Read-ahead chunk fetches in flight per open file. */
  maxInFlightChunks: number;
}

export const DEFAULT_READ_AHEAD_SETTINGS: Readonly<ReadAheadSettings> = {
  minWindowBytes: 2 * MiB,
  maxWindowBytes: 32 * MiB,
  maxInFlightChunks: 8,
};

export interface ReadAheadOptions {
  index: LayerIndex;
  source: ChunkSource;
  settings: Readonly<ReadAheadSettings>;
  /** Shared by every layer of a mount (or of the daemon): the global memory bound. */
  budget: ReadAheadBudget;
  /** Milliseconds, monotonic (tests pass a fake clock). */
  now?: () => number;
}

export interface FileReadAheadStats {
  readonly fh: number;
  readonly path: string;
  readonly open: boolean;
  readonly reads: number;
  readonly bytesRead: number;
  /** Largest window among the handle's sequential streams; 0 when none is sequential. */
  readonly windowBytes: number;
  readonly inFlightChunks: number;
  readonly issuedChunks: number;
  /** Read-ahead chunks the reader then read. */
  readonly hitChunks: number;
  /** Bytes read per second between the handle's first and last read. */
  readonly bytesPerSec: number;
}

export interface ReadAheadStats {
  readonly layerDigest: string;
  /** Open handles, then the most recently released ones. */
  readonly files: readonly FileReadAheadStats[];
  readonly budget: { inUseBytes: number; maxBytes: number; peakBytes: number; refused: number };
}

interface Handle {
  readonly fh: number;
  readonly node: LayerNode;
  /** Layer chunk ids of the file, by position. */
  readonly ids: readonly number[];
  readonly policy: ReadAheadPolicy;
  readonly abort: AbortController;
  open: boolean;
  firstReadMs: number | undefined;
  lastReadMs: number;
}

/** Released handles kept for stats. */
const KEEP_RELEASED = 16;

export class ReadAhead {
  private readonly index: LayerIndex;
  private readonly source: ChunkSource;
  private readonly settings: Readonly<ReadAheadSettings>;
  private readonly budget: ReadAheadBudget;
  private readonly now: () => number;
  private readonly handles = new Map<number, Handle>();
  private readonly released: Handle[] = [];
  private readonly layouts = new WeakMap<LayerNode, { ids: number[]; spans: FileChunkSpan[] }>();
  private closed = false;

  constructor(options: ReadAheadOptions) {
    this.index = options.index;
    this.source = options.source;
    this.settings = options.settings;
    this.budget = options.budget;
    this.now = options.now ?? (() => performance.now());
  }

  /** A file handle was opened on `node`. Files of fewer than two chunks get no state (nothing to read ahead). */
  open(fh: number, node: LayerNode): void {
    if (this.closed || node.type !== 'file') return;
    const layout = this.layoutOf(node);
    if (layout === undefined || layout.ids.length < 2) return;
    this.handles.get(fh)?.abort.abort();
    const abort = new AbortController();
    // Every fetch in flight listens on it at a few middleware levels.
    setMaxListeners(Math.max(10, this.settings.maxInFlightChunks * 8), abort.signal);
    this.handles.set(fh, {
      fh,
      node,
      ids: layout.ids,
      policy: new ReadAheadPolicy({
        chunks: layout.spans,
        minWindowBytes: this.settings.minWindowBytes,
        maxWindowBytes: this.settings.maxWindowBytes,
        maxInFlight: this.settings.maxInFlightChunks,
      }),
      abort,
      open: true,
      firstReadMs: undefined,
      lastReadMs: 0,
    });
  }

  /** A read of [offset, offset+length) of `node` through handle `fh` is about to be served. */
  onRead(fh: number, node: LayerNode, offset: number, length: number): void {
    let h = this.handles.get(fh);
    if (h === undefined || h.node !== node) {
      this.open(fh, node);
      h = this.handles.get(fh);
      if (h === undefined) return;
    }
    const t = this.now();
    h.firstReadMs ??= t;
    h.lastReadMs = t;
    this.issue(h, h.policy.onRead(offset, length, t));
  }

  /** The handle was released: its read-ahead in flight is cancelled (fetches other callers share go on). */
  release(fh: number): void {
    const h = this.handles.get(fh);
    if (h === undefined) return;
    this.handles.delete(fh);
    h.open = false;
    h.abort.abort();
    this.released.push(h);
    if (this.released.length > KEEP_RELEASED) this.released.shift();
  }

  /** Cancels everything (unmount). */
  close(): void {
    this.closed = true;
    for (const fh of [...this.handles.keys()]) this.release(fh);
  }

  stats(): ReadAheadStats {
    const b = this.budget;
    return {
      layerDigest: this.index.layerDigest,
      files: [...this.handles.values(), ...[...this.released].reverse()].map(fileStats),
      budget: { inUseBytes: b.inUseBytes, maxBytes: b.maxBytes, peakBytes: b.peakBytes, refused: b.refused },
    };
  }

  private issue(h: Handle, fetches: readonly ReadAheadFetch[]): void {
    const deferred: number[] = [];
    for (const f of fetches) {
      const chunk = h.ids[f.position];
      const c = chunk === undefined ? undefined : this.index.chunks[chunk];
      if (chunk === undefined || c === undefined || !h.open || !this.budget.tryAcquire(c.size)) {
        deferred.push(f.position);
        continue;
      }
      let settled = false;
      const done = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        this.budget.release(c.size);
        const more = h.policy.onFetchDone(f.position, ok);
        if (h.open) this.issue(h, more);
      };
      // Errors are the demand read's to report (it fetches the chunk again); read-ahead only warms the cache.
      this.source.fetch({ index: this.index, chunk, priority: f.priority }, h.abort.signal).then(
        () => done(true),
        () => done(false),
      );
    }
    h.policy.onDeferred(deferred);
  }

  private layoutOf(node: LayerNode): { ids: number[]; spans: FileChunkSpan[] } | undefined {
    const known = this.layouts.get(node);
    if (known !== undefined) return known;
    const start = node.dataOffset;
    if (start === undefined || node.size === 0) return undefined;
    const end = start + node.size;
    const ids = chunksCovering(this.index.chunks, start, node.size);
    const spans = ids.map((id) => {
      const c = this.index.chunks[id]!;
      return { start: Math.max(c.offset, start) - start, end: Math.min(c.offset + c.size, end) - start };
    });
    const layout = { ids, spans };
    this.layouts.set(node, layout);
    return layout;
  }
}

function fileStats(h: Handle): FileReadAheadStats {
  const p = h.policy;
  const spanMs = h.firstReadMs === undefined ? 0 : h.lastReadMs - h.firstReadMs;
  return {
    fh: h.fh,
    path: h.node.path,
    open: h.open,
    reads: p.reads,
    bytesRead: p.bytesRead,
    windowBytes: h.open ? p.windowBytes : 0,
    inFlightChunks: p.inFlightCount,
    issuedChunks: p.issued,
    hitChunks: p.hits,
    bytesPerSec: spanMs > 0 ? Math.round((p.bytesRead / spanMs) * 1000) : 0,
  };
}
