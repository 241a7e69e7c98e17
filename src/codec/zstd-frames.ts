// Finds zstd frame boundaries in a compressed stream without decoding it (RFC 8878 §3.1: frame and block
// headers only), so builders know where independently decodable frames start; pure JS, no binding.
import { FormatError } from '../errors.js';

export const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames use magics 0x184D2A50–0x184D2A5F. */
const SKIPPABLE_MASK = 0xfffffff0;
export const SKIPPABLE_MAGIC = 0x184d2a50;

export interface ZstdFrame {
  /** Offset of the frame's magic number in the stream. */
  readonly start: number;
  /** Offset just past the frame's last byte. */
  readonly end: number;
  readonly skippable: boolean;
}

/** True when `head` starts with the zstd frame magic (28 b5 2f fd). */
export function isZstdMagic(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd;
}

type State =
  | { kind: 'magic' }
  | { kind: 'frameHeader'; need: number }
  | { kind: 'skippableSize' }
  | { kind: 'blockHeader' }
  | { kind: 'skip'; left: number; then: 'blockHeader' | 'checksum' | 'frameEnd' };

/**
 * Incremental scanner: push the stream in pieces; each push returns the stream offsets where frames ended
 * inside that piece. Structural errors (unknown magic, reserved block type) are FormatErrors.
 */
export class ZstdFrameScanner {
  /** Every frame so far, unless constructed with keepFrames false (a stream of tiny frames is unbounded). */
  readonly frames: ZstdFrame[] = [];
  /** The frame that ended last. */
  last: ZstdFrame | undefined;
  /** The frames that ended in the last push(), in order (a piece may end several). */
  ended: ZstdFrame[] = [];
  private count = 0;
  private state: State = { kind: 'magic' };
  private hdr: number[] = [];
  private pos = 0;
  private frameStart = 0;
  private skippable = false;
  private checksum = false;

  constructor(
    private readonly label: string,
    private readonly keepFrames = true,
  ) {}

  /** Bytes scanned so far. */
  get offset(): number {
    return this.pos;
  }

  /** True when the bytes so far end exactly at a frame boundary. */
  get atFrameEnd(): boolean {
    return this.state.kind === 'magic' && this.hdr.length === 0;
  }

  /** Feeds the next piece; returns the offsets just past each frame that ended in it (see `ended`). */
  push(piece: Uint8Array): number[] {
    const ends: number[] = [];
    this.ended = [];
    let i = 0;
    while (i < piece.length) {
      const s = this.state;
      if (s.kind === 'skip') {
        const n = Math.min(s.left, piece.length - i);
        i += n;
        this.pos += n;
        s.left -= n;
        if (s.left > 0) break;
        if (s.then === 'frameEnd') this.endFrame(ends);
        else if (s.then === 'checksum') this.skipThen(4, 'frameEnd', ends);
        else this.state = { kind: 'blockHeader' };
        continue;
      }
      this.hdr.push(piece[i]!);
      i++;
      this.pos++;
      this.step(ends);
    }
    return ends;
  }

  /** Throws unless the stream ended at a frame boundary. */
  finish(): void {
    if (!this.atFrameEnd) {
      throw new FormatError(`${this.label}: zstd stream truncated inside a frame at offset ${this.pos}`);
    }
    if (this.count === 0) throw new FormatError(`${this.label}: empty zstd stream`);
  }

  private step(ends: number[]): void {
    const h = this.hdr;
    const s = this.state;
    if (s.kind === 'magic') {
      if (h.length < 4) return;
      const magic = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
      this.frameStart = this.pos - 4;
      this.hdr = [];
      if (magic === ZSTD_MAGIC) {
        this.skippable = false;
        this.state = { kind: 'frameHeader', need: 1 };
      } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
        this.skippable = true;
        this.state = { kind: 'skippableSize' };
      } else {
        throw new FormatError(
          `${this.label}: no zstd frame at offset ${this.frameStart} (magic 0x${magic.toString(16)})`,
        );
      }
    } else if (s.kind === 'frameHeader') {
      if (h.length === 1) {
        const fhd = h[0]!;
        if ((fhd & 0x08) !== 0) throw new FormatError(`${this.label}: zstd frame header reserved bit set`);
        const singleSegment = (fhd & 0x20) !== 0;
        const fcsFlag = fhd >> 6;
        const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : 1 << fcsFlag;
        const didBytes = [0, 1, 2, 4][fhd & 3]!;
        this.checksum = (fhd & 0x04) !== 0;
        s.need = 1 + (singleSegment ? 0 : 1) + didBytes + fcsBytes;
      }
      if (h.length < s.need) return;
      this.hdr = [];
      this.state = { kind: 'blockHeader' };
    } else if (s.kind === 'skippableSize') {
      if (h.length < 4) return;
      const size = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
      this.hdr = [];
      this.skipThen(size, 'frameEnd', ends);
    } else if (s.kind === 'blockHeader') {
      if (h.length < 3) return;
      const v = h[0]! | (h[1]! << 8) | (h[2]! << 16);
      this.hdr = [];
      const last = (v & 1) !== 0;
      const type = (v >> 1) & 3;
      const size = v >>> 3;
      if (type === 3) throw new FormatError(`${this.label}: reserved zstd block type at ${this.pos - 3}`);
      const body = type === 1 ? 1 : size;
      this.skipThen(body, last ? (this.checksum ? 'checksum' : 'frameEnd') : 'blockHeader', ends);
    }
  }

  private skipThen(left: number, then: 'blockHeader' | 'checksum' | 'frameEnd', ends: number[]): void {
    if (left > 0) {
      this.state = { kind: 'skip', left, then };
      return;
    }
    if (then === 'frameEnd') this.endFrame(ends);
    else if (then === 'checksum') this.skipThen(4, 'frameEnd', ends);
    else this.state = { kind: 'blockHeader' };
  }

  private endFrame(ends: number[]): void {
    this.last = { start: this.frameStart, end: this.pos, skippable: this.skippable };
    this.ended.push(this.last);
    this.count++;
    if (this.keepFrames) this.frames.push(this.last);
    ends.push(this.pos);
    this.state = { kind: 'magic' };
  }
}
