// LayerReader: file bytes for a LayerNode — maps [dataOffset + offset, …) to the chunks covering it, fetches
// them in parallel (priority 'demand') through the ChunkSource, and slices out the requested range.
import { performance } from 'node:perf_hooks';
import { chunksCovering, type LayerIndex } from '../image/layer-index.js';
import { FormatError, InvalidArgumentError } from '../errors.js';
import { readEnd, readStart, type LayerReadMessage } from '../metrics/channels.js';
import { fetchChunkPart, type ChunkSource } from '../source/chunk-source.js';
import type { LayerNode } from './layer-tree.js';
// read-ahead hook (src/layer/read-ahead*.ts)
import type { ReadAheadBudget } from './read-ahead-budget.js';
import { ReadAhead, type ReadAheadSettings } from './read-ahead.js';

/** Called once per chunk a read touches; `tMs` is milliseconds since the reader was created (≈ mount time). */
export type ChunkReadHook = (index: LayerIndex, chunk: number, tMs: number) => void;

export interface LayerReaderOptions {
  index: LayerIndex;
  source: ChunkSource;
  onChunkRead?: ChunkReadHook;
  /** Publish each read on the readStart/readEnd channels (the served layers' demand reads; not audits). */
  publishReads?: boolean;
  /** read-ahead hook: sequential readers get the following chunks fetched ahead (see read-ahead.ts). */
  readAhead?: { settings: Readonly<ReadAheadSettings>; budget: ReadAheadBudget };
}

const EMPTY = Buffer.alloc(0);

export class LayerReader {
  readonly index: LayerIndex;
  private readonly source: ChunkSource;
  private readonly onChunkRead: ChunkReadHook | undefined;
  private readonly publishReads: boolean;
  private readonly startedAt = performance.now();
  /** read-ahead hook: the FUSE ops feed it open/read/release per file handle. */
  readonly readAhead: ReadAhead | undefined;

  constructor(options: LayerReaderOptions) {
    this.index = options.index;
    this.source = options.source;
    this.onChunkRead = options.onChunkRead;
    this.publishReads = options.publishReads ?? false;
    const ra = options.readAhead;
    this.readAhead =
      ra === undefined
        ? undefined
        : new ReadAhead({ index: this.index, source: this.source, settings: ra.settings, budget: ra.budget });
  }

  /**
   * Up to `length` bytes of the file from `offset`; shorter at EOF, empty past it. The result may be a view
   * into a cached chunk buffer: callers must not modify it.
   */
  async readFile(node: LayerNode, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    const parts = await this.readFileParts(node, offset, length, signal);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /**
   * The same bytes as readFile, as views of the cached chunks in order (one per chunk the range touches), so a
   * reply can gather them (writev) instead of copying a read that straddles chunks into one buffer.
   */
  readFileParts(
    node: LayerNode,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): Promise<readonly Buffer[]> {
    const work = this.readRange(node, offset, length, signal);
    if (this.publishReads && (readStart.active || readEnd.active)) {
      const m: LayerReadMessage = { layer: this.index.layerDigest, lengthBytes: length };
      readStart.publish(m);
      work.then(
        (parts) => {
          m.bytes = parts.reduce((n, b) => n + b.length, 0);
          readEnd.publish(m);
        },
        (e: unknown) => {
          m.error = e ?? new Error('read failed');
          m.bytes = 0;
          readEnd.publish(m);
        },
      );
    }
    return work;
  }

  private async readRange(
    node: LayerNode,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): Promise<readonly Buffer[]> {
    if (node.type !== 'file') throw new InvalidArgumentError(`not a regular file: ${node.path}`);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new InvalidArgumentError(`bad read range ${offset}+${length} of ${node.path}`);
    }
    const end = Math.min(node.size, offset + length);
    if (offset >= end) return [EMPTY];
    if (node.dataOffset === undefined) {
      throw new FormatError(`file ${node.path} in layer ${this.index.layerDigest} has no data offset`);
    }
    const start = node.dataOffset + offset;
    const want = end - offset;
    const chunks = this.index.chunks;
    const ids = chunksCovering(chunks, start, want);
    this.checkCoverage(ids, start, want, node);

    const t = performance.now() - this.startedAt;
    if (this.onChunkRead !== undefined) for (const id of ids) this.onChunkRead(this.index, id, t);
    // Parts, not whole chunks: a read of 128 KiB of a stored 1 MiB chunk is one positioned read of the store.
    return Promise.all(
      ids.map((chunk) => {
        const c = chunks[chunk]!;
        const from = Math.max(start, c.offset) - c.offset;
        const to = Math.min(start + want, c.offset + c.size) - c.offset;
        return fetchChunkPart(
          this.source,
          { index: this.index, chunk, priority: 'demand' },
          from,
          to,
          signal,
        );
      }),
    );
  }

  private checkCoverage(ids: number[], start: number, want: number, node: LayerNode): void {
    const chunks = this.index.chunks;
    let at = start;
    for (const id of ids) {
      const c = chunks[id]!;
      if (c.offset > at) break;
      at = c.offset + c.size;
    }
    if (at < start + want) {
      throw new FormatError(
        `layer ${this.index.layerDigest} index has no chunk for byte ${at} of ${node.path} (range ${start}+${want})`,
      );
    }
  }
}
