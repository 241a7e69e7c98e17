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
  private scheduled = false;
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
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const pending = this.pending;
    this.pending = new Map();
    this.scheduled = false;
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
    const only = group.length === 1 ? group[0] : undefined;
    if (only !== undefined) {
      // Alone: its own signal, and the reader's buffer as it came (it may be handed off to a decode worker).
      only.blob.readRange(only.start, only.end, only.signal).then(only.resolve, only.reject);
      return;
    }
    this.counters.merged += group.length - 1;
    const start = group[0]!.start;
    // Shared by several callers: no one caller's abort cancels it; each caller stops waiting on its own abort.
    const read = group[0]!.blob.readRange(start, end);
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
