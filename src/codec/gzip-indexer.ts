// Streaming gzip decoder for index building: yields the uncompressed stream and records zran checkpoints
// (deflate block boundaries, bit offset + 32 KiB window) every `spanBytes` of output, across gzip members,
// plus one at the last block boundary before each offset asked for with `checkpointBefore` (chunk starts), so a
// chunk read inflates little more than the chunk itself.
import type { Checkpoint } from '../image/layer-index.js';
import { FormatError } from '../errors.js';
import {
  GZIP_WINDOW_BITS,
  Z_BLOCK,
  Z_BUF_ERROR,
  Z_OK,
  Z_STREAM_END,
  inflate,
  inflateInit2,
  inflateReset2,
  newZStream,
  type ZStream,
} from './pako-zlib.js';

export const WINDOW_BYTES = 32 * 1024;
export const DEFAULT_SPAN_BYTES = 2 * 1024 * 1024;
/** Input fed per inflate call: keeps `compressedConsumed` tight so chunk spans stay small. */
const INPUT_SLICE_BYTES = 16 * 1024;
const OUTPUT_BYTES = 64 * 1024;

/** Receives each piece of output (valid only during the call) and the compressed bytes consumed so far. */
export type OutputSink = (output: Uint8Array, compressedConsumed: number) => void;

export interface GzipIndexerOptions {
  spanBytes?: number;
  /** Names the layer in error messages. */
  label?: string;
}

type Mode = 'between' | 'member' | 'trailing';

/** The most recent restart point seen; promoted to a checkpoint when a requested offset lies just past it. */
interface Candidate {
  compressedOffset: number;
  uncompressedOffset: number;
  bits: number;
  memberStart: boolean;
  /** Valid bytes of `candidateWindow` (less than 32 KiB only near the stream start). */
  windowBytes: number;
}

/** A requested checkpoint closer than this to an existing one is not worth its 32 KiB window. */
const NEAR_ENOUGH_BYTES = 64 * 1024;

export class GzipIndexer {
  readonly checkpoints: Checkpoint[] = [];
  readonly windows: Uint8Array[] = [];
  private readonly spanBytes: number;
  private readonly label: string;
  private readonly strm: ZStream = newZStream();
  private readonly out = new Uint8Array(OUTPUT_BYTES);
  /** Ring of the last WINDOW_BYTES of output. */
  private readonly ring = new Uint8Array(WINDOW_BYTES);
  private ringPos = 0;
  private mode: Mode = 'between';
  private members = 0;
  private totalIn = 0;
  private totalOut = 0;
  private lastCheckpointOut = -1;
  private candidate: Candidate | undefined;
  private readonly candidateWindow = new Uint8Array(WINDOW_BYTES);
  /** Requested offsets (ascending) whose restart point has not been decided yet. */
  private pending: number[] = [];

  constructor(opts: GzipIndexerOptions = {}) {
    this.spanBytes = opts.spanBytes ?? DEFAULT_SPAN_BYTES;
    this.label = opts.label ?? 'gzip stream';
    if (!(this.spanBytes > 0)) throw new FormatError(`spanBytes must be positive, got ${this.spanBytes}`);
    if (inflateInit2(this.strm, GZIP_WINDOW_BITS) !== Z_OK) throw new FormatError('inflateInit2 failed');
  }

  get compressedConsumed(): number {
    return this.totalIn;
  }

  get uncompressedProduced(): number {
    return this.totalOut;
  }

  /**
   * Asks for a checkpoint at the last restart point at or before `offset` (an uncompressed offset that has not
   * been passed by a restart point yet). Offsets must be requested in ascending order; others are ignored.
   */
  checkpointBefore(offset: number): void {
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && offset <= last) return;
    if (this.candidate !== undefined && this.candidate.uncompressedOffset > offset) return;
    this.pending.push(offset);
  }

  /** Decodes all of `input`, calling `sink` for every piece of output. Throws FormatError on corrupt data. */
  push(input: Uint8Array, sink: OutputSink): void {
    let pos = 0;
    while (pos < input.length) {
      if (this.mode === 'trailing') {
        for (let i = pos; i < input.length; i++) {
          if (input[i] !== 0)
            throw this.error(`non-zero trailing data after the last gzip member`, this.totalIn + i - pos);
        }
        this.totalIn += input.length - pos;
        return;
      }
      if (this.mode === 'between') {
        if (input[pos] !== 0x1f) {
          if (this.members > 0 && input[pos] === 0) {
            this.mode = 'trailing';
            continue;
          }
          throw this.error(
            this.members > 0 ? 'trailing garbage after the last gzip member' : 'not a gzip member header',
            this.totalIn,
          );
        }
        this.startMember();
      }
      const slice = Math.min(input.length - pos, INPUT_SLICE_BYTES);
      pos = this.step(input, pos, slice, sink);
    }
  }

  /** Call after the last input: throws FormatError if the stream ended inside a member or held no member. */
  finish(): void {
    if (this.mode === 'member') throw this.error('truncated gzip stream', this.totalIn);
    if (this.members === 0) throw this.error('empty gzip stream', 0);
  }

  private startMember(): void {
    if (this.members > 0 && inflateReset2(this.strm, GZIP_WINDOW_BITS) !== Z_OK) {
      throw this.error('inflateReset2 failed', this.totalIn);
    }
    this.passRestartPoint(0, true);
    if (this.lastCheckpointOut < 0 || this.totalOut - this.lastCheckpointOut >= this.spanBytes) {
      this.addCheckpoint({ bits: 0, memberStart: true, window: new Uint8Array(0) });
    }
    this.members++;
    this.mode = 'member';
  }

  /** One inflate call over input[pos, pos+len); returns the new input position. */
  private step(input: Uint8Array, pos: number, len: number, sink: OutputSink): number {
    const strm = this.strm;
    strm.input = input;
    strm.next_in = pos;
    strm.avail_in = len;
    strm.output = this.out;
    strm.next_out = 0;
    strm.avail_out = this.out.length;
    const ret = inflate(strm, Z_BLOCK);
    const consumed = strm.next_in - pos;
    const produced = strm.next_out;
    this.totalIn += consumed;
    if (produced > 0) {
      const piece = this.out.subarray(0, produced);
      this.remember(piece);
      this.totalOut += produced;
      sink(piece, this.totalIn);
    }
    if (ret === Z_STREAM_END) {
      // The member's end passes requested offsets too; the next member's start becomes the candidate.
      this.resolvePending();
      this.mode = 'between';
      return strm.next_in;
    }
    if (ret !== Z_OK && ret !== Z_BUF_ERROR) {
      throw this.error(`corrupt deflate data (${strm.msg || `zlib error ${ret}`})`, this.totalIn);
    }
    const dt = strm.data_type;
    const atBoundary = (dt & 128) !== 0 && (dt & 64) === 0;
    if (ret === Z_BUF_ERROR && consumed === 0 && produced === 0 && !atBoundary) {
      throw this.error('inflate made no progress', this.totalIn);
    }
    if (atBoundary && (strm.state?.bits ?? 8) < 8) {
      this.passRestartPoint(dt & 7, false);
      if (this.totalOut - this.lastCheckpointOut >= this.spanBytes) {
        this.addCheckpoint({ bits: dt & 7, memberStart: false, window: this.currentWindow() });
      }
    }
    return strm.next_in;
  }

  /** At a restart point (block boundary or member start): settle what is behind, then remember this point. */
  private passRestartPoint(bits: number, memberStart: boolean): void {
    this.resolvePending();
    // Always kept: a chunk start is asked for only when its tar header has streamed past, which may be after
    // the restart point it needs.
    const windowBytes = memberStart ? 0 : this.copyWindowInto(this.candidateWindow);
    this.candidate = {
      compressedOffset: this.totalIn,
      uncompressedOffset: this.totalOut,
      bits,
      memberStart,
      windowBytes,
    };
  }

  /** Requested offsets now behind us are served by the candidate, the last restart point before them. */
  private resolvePending(): void {
    const c = this.candidate;
    while (this.pending.length > 0 && this.pending[0]! < this.totalOut) {
      const target = this.pending.shift()!;
      if (c === undefined || c.uncompressedOffset > target) continue;
      if (c.uncompressedOffset - this.lastCheckpointOut < NEAR_ENOUGH_BYTES && this.lastCheckpointOut >= 0)
        continue;
      if (target - this.lastCheckpointOut < NEAR_ENOUGH_BYTES && this.lastCheckpointOut >= 0) continue;
      this.checkpoints.push({
        compressedOffset: c.compressedOffset,
        bits: c.bits,
        uncompressedOffset: c.uncompressedOffset,
        window: this.windows.length,
        memberStart: c.memberStart,
      });
      this.windows.push(c.memberStart ? new Uint8Array(0) : this.candidateWindow.slice(0, c.windowBytes));
      this.lastCheckpointOut = c.uncompressedOffset;
    }
  }

  private addCheckpoint(cp: { bits: number; memberStart: boolean; window: Uint8Array }): void {
    this.checkpoints.push({
      compressedOffset: this.totalIn,
      bits: cp.bits,
      uncompressedOffset: this.totalOut,
      window: this.windows.length,
      memberStart: cp.memberStart,
    });
    this.windows.push(cp.window);
    this.lastCheckpointOut = this.totalOut;
  }

  private remember(piece: Uint8Array): void {
    const src = piece.length > WINDOW_BYTES ? piece.subarray(piece.length - WINDOW_BYTES) : piece;
    const first = Math.min(src.length, WINDOW_BYTES - this.ringPos);
    this.ring.set(src.subarray(0, first), this.ringPos);
    if (first < src.length) this.ring.set(src.subarray(first), 0);
    this.ringPos = (this.ringPos + src.length) % WINDOW_BYTES;
  }

  /** The last min(32 KiB, output so far) bytes of output, oldest first. */
  private currentWindow(): Uint8Array {
    const w = new Uint8Array(Math.min(this.totalOut, WINDOW_BYTES));
    this.copyWindowInto(w);
    return w;
  }

  private copyWindowInto(w: Uint8Array): number {
    const have = Math.min(this.totalOut, WINDOW_BYTES);
    const start = (this.ringPos - have + WINDOW_BYTES) % WINDOW_BYTES;
    const first = Math.min(have, WINDOW_BYTES - start);
    w.set(this.ring.subarray(start, start + first), 0);
    if (first < have) w.set(this.ring.subarray(0, have - first), first);
    return have;
  }

  private error(what: string, offset: number): FormatError {
    return new FormatError(`${this.label}: ${what} at compressed offset ${offset}`);
  }
}
