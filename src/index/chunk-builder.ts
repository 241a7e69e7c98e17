// Cuts the uncompressed stream into chunks while it streams past (policy in build-stream.ts) and hashes
// each chunk once its last byte has arrived, noting how much compressed input had been consumed by then.
import { FerryError } from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';

export interface RawChunk {
  readonly digest: Digest;
  readonly offset: number;
  readonly size: number;
  /** Compressed bytes consumed when the output reached the chunk's end. */
  readonly consumedAtEnd: number;
}

interface Range {
  start: number;
  end: number;
}

interface Piece {
  readonly start: number;
  readonly bytes: Buffer;
  readonly consumed: number;
}

export interface ChunkBuilderOptions {
  chunkSizeBytes: number;
  onChunk?: (chunkIndex: number, bytes: Buffer) => void;
  /** Called with each chunk's start offset as soon as it is planned (ascending), before its bytes arrive. */
  onPlanned?: (start: number) => void;
}

export class ChunkBuilder {
  readonly chunks: RawChunk[] = [];
  private readonly chunkSize: number;
  private readonly bigFileBytes: number;
  private readonly onChunk: ((chunkIndex: number, bytes: Buffer) => void) | undefined;
  private readonly onPlanned: ((start: number) => void) | undefined;
  private readonly ready: Range[] = [];
  private pack: Range | undefined;
  private pieces: Piece[] = [];
  private pos = 0;

  constructor(opts: ChunkBuilderOptions) {
    this.chunkSize = Math.max(1, Math.floor(opts.chunkSizeBytes));
    this.bigFileBytes = Math.max(1, Math.floor(this.chunkSize / 4));
    this.onChunk = opts.onChunk;
    this.onPlanned = opts.onPlanned;
  }

  /** Plans chunks for a regular file's data [dataOffset, dataOffset+size), called as its header is parsed. */
  addFile(dataOffset: number, size: number): void {
    if (size === 0) return;
    const end = dataOffset + size;
    if (size >= this.bigFileBytes) {
      this.closePack();
      for (let o = dataOffset; o < end; o += this.chunkSize) {
        this.ready.push({ start: o, end: Math.min(end, o + this.chunkSize) });
        this.onPlanned?.(o);
      }
      return;
    }
    if (this.pack !== undefined && end - this.pack.start > this.chunkSize) this.closePack();
    if (this.pack === undefined) {
      this.pack = { start: dataOffset, end };
      this.onPlanned?.(dataOffset);
    } else this.pack.end = end;
  }

  /** Appends the next piece of the uncompressed stream (copied). */
  addOutput(bytes: Uint8Array, consumedAfter: number): void {
    if (bytes.length === 0) return;
    this.pieces.push({ start: this.pos, bytes: Buffer.from(bytes), consumed: consumedAfter });
    this.pos += bytes.length;
  }

  /** Emits every planned chunk whose bytes have all arrived, then drops bytes no chunk can still need. */
  flush(): void {
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
  }

  /** Closes the open pack and emits everything; all planned bytes must have arrived. */
  finish(): void {
    this.closePack();
    this.flush();
    const left = this.ready[0];
    if (left !== undefined)
      throw new FerryError(
        'INTERNAL',
        `chunk [${left.start}, ${left.end}) planned past the stream end ${this.pos}`,
      );
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
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (bytes.length !== r.end - r.start)
      throw new FerryError('INTERNAL', `chunk [${r.start}, ${r.end}) has ${bytes.length} bytes`);
    const index = this.chunks.length;
    this.chunks.push({ digest: sha256(bytes), offset: r.start, size: bytes.length, consumedAtEnd: consumed });
    this.onChunk?.(index, bytes);
  }
}
