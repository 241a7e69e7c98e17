// Cuts the uncompressed stream into chunks while it streams past (policy in build-stream.ts) and hashes
// each chunk once its last byte has arrived, noting how much compressed input had been consumed by then.
// Memory stays within about one chunk plus one piece whatever the layer holds: a big file's chunks are planned
// as its bytes approach (a header may claim any size), and an open pack closes once the stream has moved a
// chunk past its start (bytes of entries no chunk covers are never held).
import { FerryError } from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';
import { DEFAULT_PACK_SIZE_BYTES } from '../image/layer-index.js';

export interface RawChunk {
  readonly digest: Digest;
  readonly offset: number;
  readonly size: number;
  /** Compressed bytes consumed when the output reached the chunk's end. */
  readonly consumedAtEnd: number;
}

/** More than any one piece of output (64 KiB from the decoders, 64 KiB from the stream reader). */
const PLAN_AHEAD_BYTES = 256 * 1024;

interface Range {
  start: number;
  end: number;
}

interface Piece {
  readonly start: number;
  readonly bytes: Buffer;
  readonly consumed: number;
  /** Still the caller's memory: copied at the next flush if a chunk may need it, else never. */
  readonly borrowed: boolean;
}

export interface ChunkBuilderOptions {
  chunkSizeBytes: number;
  /**
   * Largest pack of small files (default DEFAULT_PACK_SIZE_BYTES, at most a chunk); files of a quarter chunk or
   * more get chunks of their own. A pack closes only when the next small file would take it past this size (or
   * before a big file), so two packs in a row span more than a pack: chunks stay within 2 per packSizeBytes of
   * the stream plus 2 per quarter chunk (big files and the packs they close), whatever the layer holds.
   */
  packSizeBytes?: number | undefined;
  onChunk?: (chunkIndex: number, bytes: Buffer) => void;
  /** Called with each chunk's start offset as soon as it is planned (ascending), before its bytes arrive. */
  onPlanned?: (start: number) => void;
}

export class ChunkBuilder {
  readonly chunks: RawChunk[] = [];
  private readonly chunkSize: number;
  private readonly packSize: number;
  private readonly bigFileBytes: number;
  private readonly onChunk: ((chunkIndex: number, bytes: Buffer) => void) | undefined;
  private readonly onPlanned: ((start: number) => void) | undefined;
  private readonly ready: Range[] = [];
  private pack: Range | undefined;
  /** A big file whose chunks are planned only as its bytes approach: `next` is the first unplanned offset. */
  private big: { next: number; end: number } | undefined;
  private pieces: Piece[] = [];
  private pos = 0;

  constructor(opts: ChunkBuilderOptions) {
    this.chunkSize = Math.max(1, Math.floor(opts.chunkSizeBytes));
    const pack = opts.packSizeBytes ?? DEFAULT_PACK_SIZE_BYTES;
    this.packSize = Math.max(1, Math.min(this.chunkSize, Math.floor(pack)));
    this.bigFileBytes = Math.max(1, Math.floor(this.chunkSize / 4));
    this.onChunk = opts.onChunk;
    this.onPlanned = opts.onPlanned;
  }

  /** Plans chunks for a regular file's data [dataOffset, dataOffset+size), called as its header is parsed. */
  addFile(dataOffset: number, size: number): void {
    if (size === 0) return;
    const end = dataOffset + size;
    // The previous file's bytes have all streamed past by now: plan whatever is left of it.
    this.planBig(Number.POSITIVE_INFINITY);
    if (size >= this.bigFileBytes) {
      this.closePack();
      this.big = { next: dataOffset, end };
      this.planBig(this.pos + this.planAheadBytes());
      return;
    }
    if (this.pack !== undefined && end - this.pack.start > this.packSize) this.closePack();
    if (this.pack === undefined) {
      this.pack = { start: dataOffset, end };
      this.onPlanned?.(dataOffset);
    } else this.pack.end = end;
  }

  /**
   * Appends the next piece of the uncompressed stream. `bytes` need stay valid only until the next flush(),
   * which copies what planned chunks still need (most bytes of most layers are never copied).
   */
  addOutput(bytes: Uint8Array, consumedAfter: number): void {
    if (bytes.length === 0) return;
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pieces.push({ start: this.pos, bytes: view, consumed: consumedAfter, borrowed: true });
    this.pos += bytes.length;
  }

  /** Emits every planned chunk whose bytes have all arrived, then drops bytes no chunk can still need. */
  flush(): void {
    this.planBig(this.pos + this.planAheadBytes());
    // No later file can join a pack the stream has moved a whole chunk past: close it rather than hold
    // the bytes of whatever follows (a huge entry of another type, say).
    if (this.pack !== undefined && this.pos - this.pack.start >= this.packSize) this.closePack();
    for (;;) {
      const r = this.ready[0];
      if (r === undefined || r.end > this.pos) break;
      this.ready.shift();
      this.emit(r);
    }
    const keepFrom = Math.min(this.ready[0]?.start ?? this.pos, this.pack?.start ?? this.pos);
    let drop = 0;
    while (drop < this.pieces.length) {
      const p = this.pieces[drop]!;
      if (p.start + p.bytes.length > keepFrom) break;
      drop++;
    }
    if (drop > 0) this.pieces = this.pieces.slice(drop);
    // Only pieces added since the last flush are borrowed: they sit at the end.
    for (let i = this.pieces.length - 1; i >= 0 && this.pieces[i]!.borrowed; i--) {
      const p = this.pieces[i]!;
      const from = Math.max(0, keepFrom - p.start);
      const bytes = Buffer.from(p.bytes.subarray(from));
      this.pieces[i] = { start: p.start + from, bytes, consumed: p.consumed, borrowed: false };
    }
  }

  /** Closes the open pack and emits everything; all planned bytes must have arrived. */
  finish(): void {
    this.planBig(Number.POSITIVE_INFINITY);
    this.closePack();
    this.flush();
    const left = this.ready[0];
    if (left !== undefined)
      throw new FerryError(
        'INTERNAL',
        `chunk [${left.start}, ${left.end}) planned past the stream end ${this.pos}`,
      );
  }

  /**
   * Plans a big file's chunks that start before `limit`. Planned ahead of the output by at least a chunk and
   * a piece, so a zran checkpoint can still be placed before each start (see GzipIndexer.checkpointBefore).
   */
  private planBig(limit: number): void {
    const big = this.big;
    if (big === undefined) return;
    while (big.next < big.end && big.next < limit) {
      const o = big.next;
      big.next = Math.min(big.end, o + this.chunkSize);
      this.ready.push({ start: o, end: big.next });
      this.onPlanned?.(o);
    }
    if (big.next >= big.end) this.big = undefined;
  }

  private planAheadBytes(): number {
    return this.chunkSize + PLAN_AHEAD_BYTES;
  }

  private closePack(): void {
    if (this.pack !== undefined) this.ready.push(this.pack);
    this.pack = undefined;
  }

  private emit(r: Range): void {
    const parts: Buffer[] = [];
    let consumed = 0;
    for (const p of this.pieces) {
      const pEnd = p.start + p.bytes.length;
      if (pEnd <= r.start) continue;
      if (p.start >= r.end) break;
      parts.push(p.bytes.subarray(Math.max(0, r.start - p.start), Math.min(p.bytes.length, r.end - p.start)));
      if (pEnd >= r.end) consumed = p.consumed;
    }
    // A chunk inside one piece is a view of it; a borrowed piece (a decoder's reused output buffer) is overwritten
    // after the next flush, and onChunk's consumers keep what they are given (the chunk store): they get a copy.
    const only = parts.length === 1 ? parts[0]! : undefined;
    const borrowed =
      only !== undefined && this.pieces.some((p) => p.borrowed && p.bytes.buffer === only.buffer);
    const bytes =
      only === undefined
        ? Buffer.concat(parts)
        : borrowed && this.onChunk !== undefined
          ? Buffer.from(only)
          : only;
    if (bytes.length !== r.end - r.start)
      throw new FerryError('INTERNAL', `chunk [${r.start}, ${r.end}) has ${bytes.length} bytes`);
    const index = this.chunks.length;
    this.chunks.push({ digest: sha256(bytes), offset: r.start, size: bytes.length, consumedAtEnd: consumed });
    this.onChunk?.(index, bytes);
  }
}
