// Range reads of one blob asked for in the same turn of the event loop and lying close together become one
// request: adjacent cold chunks of a layer (small packs read together, a read-ahead batch) and their windows.
import { AbortedError } from '../errors.js';
import type { BlobReader } from '../image/blob-reader.js';
import type { Digest } from '../image/digest.js';

/**
 * Ranges merge across a gap of at most this many bytes: a gap costs its bytes, a request costs a round trip
 * and ~1 KB of headers; adjacent chunks' spans mostly overlap (each starts at a checkpoint before its chunk).
 */
const MAX_GAP_BYTES = 32 * 1024;
/**
 * While a read of the same blob is already on the wire, a new one waits this long for neighbours to share its
 * request (parallel readers of one layer's small files arrive a little apart, not in one turn). With nothing of
 * that blob in flight (one reader going file by file) it waits for nothing.
 */
const LINGER_MS = 2;
const LINGER_MAX_BYTES = 256 * 1024;
/**
 * One merged request stays within about one big chunk's span: every caller in it waits for its last byte, so
 * merging 1 MiB chunks of a sequential read would delay the first one and serialise what parallel requests
 * fetch side by side; small packs (128 KiB, less compressed) merge up to 8 at a time.
 */
const MAX_MERGED_BYTES = 1024 * 1024;

interface Wanted {
  readonly start: number;
  readonly end: number;
  readonly blob: BlobReader;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (b: Buffer) => void;
  readonly reject: (e: unknown) => void;
}

export interface CoalesceStats {
  /** Requests sent to the blob readers. */
  requests: number;
  /** Ranges asked for that rode on another range's request. */
  merged: number;
}

export class RangeCoalescer {
  private pending = new Map<Digest, Wanted[]>();
  private scheduled: 'now' | 'later' | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Range requests on the wire, per blob digest. */
  private readonly onWire = new Map<Digest, number>();
  private readonly counters: CoalesceStats = { requests: 0, merged: 0 };

  /** `blob`, with its range reads (and its siblings') merged with others' of the same blob digest. */
  wrap(blob: BlobReader): BlobReader {
    const wrapped: BlobReader = {
      digest: blob.digest,
      size: (signal) => blob.size(signal),
      stream: (signal) => blob.stream(signal),
      readRange: (start, end, signal) => this.read(blob, start, end, signal),
    };
    const sibling = blob.sibling?.bind(blob);
    return sibling === undefined ? wrapped : { ...wrapped, sibling: (d, s) => this.wrap(sibling(d, s)) };
  }

  stats(): CoalesceStats {
    return { ...this.counters };
  }

  private read(blob: BlobReader, start: number, end: number, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted === true) return Promise.reject(new AbortedError(`range of ${blob.digest}: aborted`));
    return new Promise<Buffer>((resolve, reject) => {
      let list = this.pending.get(blob.digest);
      if (list === undefined) this.pending.set(blob.digest, (list = []));
      list.push({ start, end, blob, signal, resolve, reject });
      // Only small reads linger: a big one (a 1 MiB chunk of a sequential read) has little to merge with.
      const busy = (this.onWire.get(blob.digest) ?? 0) > 0 && end - start <= LINGER_MAX_BYTES;
      if (this.scheduled === undefined && busy) {
        this.scheduled = 'later';
        this.timer = setTimeout(() => this.flush(), LINGER_MS);
      } else if (this.scheduled !== 'now' && !busy) {
        // Nothing to wait for on this blob: flush in this turn's wake, with whatever else is pending.
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.scheduled = 'now';
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    if (this.scheduled === undefined) return;
    const pending = this.pending;
    this.pending = new Map();
    this.scheduled = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const list of pending.values()) {
      list.sort((a, b) => a.start - b.start);
      let group: Wanted[] = [];
      let gEnd = 0;
      for (const w of list) {
        if (w.signal?.aborted === true) {
          w.reject(new AbortedError(`range of ${w.blob.digest}: aborted`));
          continue;
        }
        const first = group[0];
        if (
          first !== undefined &&
          (w.start > gEnd + MAX_GAP_BYTES || Math.max(gEnd, w.end) - first.start > MAX_MERGED_BYTES)
        ) {
          this.send(group, gEnd);
          group = [];
        }
        gEnd = group.length === 0 ? w.end : Math.max(gEnd, w.end);
        group.push(w);
      }
      if (group.length > 0) this.send(group, gEnd);
    }
  }

  private send(group: Wanted[], end: number): void {
    this.counters.requests++;
    const first = group[0]!;
    const digest = first.blob.digest;
    this.onWire.set(digest, (this.onWire.get(digest) ?? 0) + 1);
    const done = (): void => {
      const n = (this.onWire.get(digest) ?? 1) - 1;
      if (n > 0) this.onWire.set(digest, n);
      else this.onWire.delete(digest);
    };
    if (group.length === 1) {
      // Alone: its own signal, and the reader's buffer as it came (it may be handed off to a decode worker).
      const read = first.blob.readRange(first.start, first.end, first.signal);
      read.then(done, done);
      read.then(first.resolve, first.reject);
      return;
    }
    this.counters.merged += group.length - 1;
    const start = first.start;
    // Shared by several callers: no one caller's abort cancels it; each caller stops waiting on its own abort.
    const read = first.blob.readRange(start, end);
    read.then(done, done);
    for (const w of group) {
      const onAbort = (): void => w.reject(new AbortedError(`range of ${w.blob.digest}: aborted`));
      w.signal?.addEventListener('abort', onAbort, { once: true });
      read.then(
        (bytes) => {
          w.signal?.removeEventListener('abort', onAbort);
          // A view into the shared answer: never handed off, so a decode worker gets a copy.
          w.resolve(bytes.subarray(w.start - start, w.end - start));
        },
        (e: unknown) => {
          w.signal?.removeEventListener('abort', onAbort);
          w.reject(e);
        },
      );
    }
  }
}
