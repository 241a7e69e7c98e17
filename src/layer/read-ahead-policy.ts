// ReadAheadPolicy: the pure decision half of read-ahead for one open file handle. It sees read offsets and
// lengths (file coordinates) and a clock, and answers which chunk positions of the file to fetch next.
import { InvalidArgumentError } from '../errors.js';

/** A chunk holding part of the file, as [start, end) in file coordinates. Positions are indexes in the list. */
export interface FileChunkSpan {
  readonly start: number;
  readonly end: number;
}

export interface ReadAheadPolicyOptions {
  /** The file's chunks in order, covering [0, size). */
  chunks: readonly FileChunkSpan[];
  /** Read-ahead window (bytes ahead of the reader) when a stream turns sequential. */
  minWindowBytes: number;
  /** The window doubles on every read-ahead chunk the reader consumes, up to this. */
  maxWindowBytes: number;
  /** Read-ahead chunks in flight at once for this handle. */
  maxInFlight: number;
  /** A read may start this far past the previous end and still be sequential (a small skip). */
  gapBytes?: number;
  /** …or this far before it: the kernel sends its readahead as concurrent requests that may arrive reordered. */
  reorderBytes?: number;
  /** Independent sequential streams tracked per handle (readers sharing one fd at different offsets). */
  maxStreams?: number;
  /** A stream without reads for this long is forgotten. */
  idleMs?: number;
  /** The first this-many chunks past the reader's position are asked for as 'demand' (they are needed next). */
  demandChunks?: number;
}

export interface ReadAheadFetch {
  /** Position in the file's chunk list. */
  readonly position: number;
  readonly priority: 'demand' | 'prefetch';
}

interface Stream {
  /** Highest end of any read in the stream: where the reader is. */
  next: number;
  /** Sequential reads seen (1 = just created). */
  reads: number;
  windowBytes: number;
  /** Chunk positions below this are fetched (by the reader or by read-ahead) or were given up on. */
  issuedTo: number;
  /** Last chunk position the reader entered; entering a later read-ahead chunk grows the window. */
  readerChunk: number;
  lastMs: number;
}

export interface PolicyStreamStats {
  readonly positionBytes: number;
  readonly windowBytes: number;
  readonly sequential: boolean;
}

const KiB = 1024;

export class ReadAheadPolicy {
  private readonly chunks: readonly FileChunkSpan[];
  private readonly minWindow: number;
  private readonly maxWindow: number;
  private readonly maxInFlight: number;
  private readonly gap: number;
  private readonly reorder: number;
  private readonly maxStreams: number;
  private readonly idleMs: number;
  private readonly demandChunks: number;
  private readonly streams: Stream[] = [];
  /** Positions issued by read-ahead and not yet reported done. */
  private readonly inFlight = new Set<number>();
  /** Positions read-ahead fetched (or is fetching) that the reader has not touched yet. */
  private readonly ahead = new Set<number>();
  /** Chunks read-ahead asked for that the reader then read (each counted once). */
  hits = 0;
  /** Chunks read-ahead asked for. */
  issued = 0;
  reads = 0;
  bytesRead = 0;

  constructor(o: ReadAheadPolicyOptions) {
    if (!(o.minWindowBytes > 0 && o.maxWindowBytes >= o.minWindowBytes && o.maxInFlight >= 1)) {
      throw new InvalidArgumentError(
        `read-ahead window ${o.minWindowBytes}..${o.maxWindowBytes} bytes, ${o.maxInFlight} in flight: invalid`,
      );
    }
    this.chunks = o.chunks;
    this.minWindow = o.minWindowBytes;
    this.maxWindow = o.maxWindowBytes;
    this.maxInFlight = o.maxInFlight;
    this.gap = o.gapBytes ?? 256 * KiB;
    this.reorder = o.reorderBytes ?? 1024 * KiB;
    this.maxStreams = o.maxStreams ?? 4;
    this.idleMs = o.idleMs ?? 10_000;
    this.demandChunks = o.demandChunks ?? 2;
  }

  /** A read of [offset, offset+length) arrived at `nowMs`; returns the chunks to start fetching now. */
  onRead(offset: number, length: number, nowMs: number): ReadAheadFetch[] {
    const end = offset + Math.max(0, length);
    const first = this.positionOf(offset);
    const last = this.positionOf(Math.max(offset, end - 1));
    this.reads++;
    this.bytesRead += Math.max(0, Math.min(end, this.size) - offset);
    let hit = false;
    for (let p = first; p >= 0 && p <= last; p++) {
      if (this.ahead.delete(p)) {
        hit = true;
        this.hits++;
      }
    }

    this.streams.splice(
      0,
      this.streams.length,
      ...this.streams.filter((s) => nowMs - s.lastMs <= this.idleMs),
    );
    // Reordering is only tolerated once a stream is sequential: a fresh one must move forward, or two
    // random reads in one region would look like a stream.
    let s = this.streams.find(
      (x) => offset >= x.next - (x.reads >= 2 ? this.reorder : 0) && offset <= x.next + this.gap,
    );
    if (s === undefined) {
      // Random access (or a new reader): a fresh stream at the smallest window. Offset 0 counts as the
      // start of a sequential read, as in the kernel's own readahead.
      s = {
        next: end,
        reads: offset === 0 ? 2 : 1,
        windowBytes: this.minWindow,
        issuedTo: last + 1,
        readerChunk: last,
        lastMs: nowMs,
      };
      if (this.streams.length >= this.maxStreams) this.dropLeastRecent();
      this.streams.push(s);
    } else {
      s.reads++;
      s.next = Math.max(s.next, end);
      s.issuedTo = Math.max(s.issuedTo, last + 1);
      s.lastMs = nowMs;
      if (last > s.readerChunk) {
        if (hit) s.windowBytes = Math.min(this.maxWindow, s.windowBytes * 2);
        s.readerChunk = last;
      }
    }
    return this.plan();
  }

  /** A read-ahead fetch finished (either way); returns more chunks to start now that a slot is free. */
  onFetchDone(position: number, ok: boolean): ReadAheadFetch[] {
    this.inFlight.delete(position);
    if (!ok) this.ahead.delete(position);
    return this.plan();
  }

  /**
   * Fetches that could not start (the global memory bound was reached): forget them so a later read asks
   * again, and halve the windows — memory pressure shrinks read-ahead like random access does.
   */
  onDeferred(positions: readonly number[]): void {
    if (positions.length === 0) return;
    const lowest = Math.min(...positions);
    for (const p of positions) {
      this.inFlight.delete(p);
      this.ahead.delete(p);
      this.issued--;
    }
    for (const s of this.streams) {
      if (s.issuedTo > lowest) s.issuedTo = Math.max(lowest, this.positionOf(s.next - 1) + 1);
      s.windowBytes = Math.max(this.minWindow, Math.floor(s.windowBytes / 2));
    }
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** The largest window among live streams (0 when no stream is sequential). */
  get windowBytes(): number {
    let w = 0;
    for (const s of this.streams) if (s.reads >= 2) w = Math.max(w, s.windowBytes);
    return w;
  }

  streamStats(): PolicyStreamStats[] {
    return this.streams.map((s) => ({
      positionBytes: s.next,
      windowBytes: s.windowBytes,
      sequential: s.reads >= 2,
    }));
  }

  private get size(): number {
    return this.chunks[this.chunks.length - 1]?.end ?? 0;
  }

  /** Fills free in-flight slots, most recently active sequential stream first. */
  private plan(): ReadAheadFetch[] {
    const out: ReadAheadFetch[] = [];
    const order = [...this.streams].filter((s) => s.reads >= 2).sort((a, b) => b.lastMs - a.lastMs);
    for (const s of order) {
      const target = s.next + s.windowBytes;
      const readerAt = this.positionOf(Math.max(0, s.next - 1));
      while (this.inFlight.size < this.maxInFlight && s.issuedTo < this.chunks.length) {
        const c = this.chunks[s.issuedTo]!;
        if (c.start >= target) break;
        const p = s.issuedTo++;
        if (this.inFlight.has(p) || this.ahead.has(p)) continue; // another stream asked already
        this.inFlight.add(p);
        this.ahead.add(p);
        this.issued++;
        out.push({ position: p, priority: p - readerAt <= this.demandChunks ? 'demand' : 'prefetch' });
      }
    }
    return out;
  }

  private dropLeastRecent(): void {
    let i = 0;
    for (let j = 1; j < this.streams.length; j++)
      if (this.streams[j]!.lastMs < this.streams[i]!.lastMs) i = j;
    this.streams.splice(i, 1);
  }

  /** Position of the chunk holding file offset `offset` (clamped to the last chunk), -1 for an empty file. */
  private positionOf(offset: number): number {
    const cs = this.chunks;
    let lo = 0;
    let hi = cs.length - 1;
    if (hi < 0) return -1;
    if (offset >= cs[hi]!.start) return hi;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (cs[mid]!.start <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
