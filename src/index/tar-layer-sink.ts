// Where a layer's uncompressed tar stream goes while an index is built: the tar parser, the entry table, the
// chunk planner and per-file content hashes. Shared by the gzip/tar and zstd stream builders. Refuses
// decompression bombs (output past INDEX_LIMITS' ratio to the compressed bytes) and too many chunks.
import { FormatError, IntegrityError } from '../errors.js';
import { DigestHasher, digestAlgorithm, sha256, type Digest } from '../image/digest.js';
import { INDEX_LIMITS } from '../image/index-limits.js';
import { TarParser } from '../image/tar.js';
import { ChunkBuilder } from './chunk-builder.js';
import { EntryTable, type MutableEntry } from './entry-table.js';

export interface TarLayerSinkOptions {
  label: string;
  chunkSizeBytes: number;
  /** Largest pack of small files (ChunkBuilderOptions.packSizeBytes). */
  packSizeBytes?: number | undefined;
  /** Each chunk's bytes as the stream passes it, with the digest the index gives it (hashed once, here). */
  onChunk?: ((chunkIndex: number, bytes: Buffer, digest: Digest) => void) | undefined;
  /** Each chunk start as soon as it is planned (ascending), e.g. to place a zran checkpoint before it. */
  onPlanned?: ((start: number) => void) | undefined;
  /** The image config's diffID: the uncompressed stream must hash to it (else IntegrityError at the end). */
  diffId?: Digest | undefined;
}

export class TarLayerSink {
  readonly chunker: ChunkBuilder;
  readonly table: EntryTable;
  private readonly tar: TarParser;
  private readonly label: string;
  private produced = 0;
  private file: { entry: MutableEntry; hasher: DigestHasher; left: number } | undefined;
  private readonly diffId: Digest | undefined;
  private readonly uncompressed: DigestHasher | undefined;

  constructor(o: TarLayerSinkOptions) {
    this.diffId = o.diffId;
    this.uncompressed = o.diffId !== undefined ? new DigestHasher(digestAlgorithm(o.diffId)) : undefined;
    this.label = o.label;
    const onChunk = o.onChunk;
    this.table = new EntryTable(o.label);
    this.chunker = new ChunkBuilder({
      chunkSizeBytes: o.chunkSizeBytes,
      packSizeBytes: o.packSizeBytes,
      ...(onChunk !== undefined
        ? { onChunk: (i: number, bytes: Buffer) => onChunk(i, bytes, this.chunker.chunks[i]!.digest) }
        : {}),
      ...(o.onPlanned !== undefined ? { onPlanned: o.onPlanned } : {}),
    });
    this.tar = new TarParser({
      label: o.label,
      onEntry: (t) => {
        const e = this.table.add(t);
        this.file = undefined;
        if (t.type !== 'file') return;
        this.chunker.addFile(t.dataOffset, t.size);
        if (e === undefined) return;
        if (t.size === 0) this.table.setDigest(e, sha256(new Uint8Array(0)));
        else this.file = { entry: e, hasher: new DigestHasher(), left: t.size };
      },
      onData: (_t, data) => {
        const file = this.file;
        if (file === undefined) return;
        file.hasher.update(data);
        file.left -= data.length;
        if (file.left === 0) this.table.setDigest(file.entry, file.hasher.digest());
      },
    });
  }

  /** The next piece of the uncompressed stream, with the compressed bytes consumed once it had come out. */
  push(bytes: Uint8Array, consumedAfter: number): void {
    this.produced += bytes.length;
    const L = INDEX_LIMITS;
    if (this.produced > L.ratioFloorBytes && this.produced > consumedAfter * L.maxCompressionRatio) {
      throw new FormatError(
        `${this.label}: ${consumedAfter} compressed bytes expanded to over ${this.produced}, more than` +
          ` ${L.maxCompressionRatio}:1 (a decompression bomb?)`,
      );
    }
    this.chunker.addOutput(bytes, consumedAfter);
    this.uncompressed?.update(bytes);
    this.tar.push(bytes);
    this.chunker.flush();
    if (this.chunker.chunks.length > L.maxChunks) {
      throw new FormatError(`${this.label}: more than ${L.maxChunks} chunks`);
    }
  }

  /**
   * The blob has streamed past: ends the decoder (`endDecoder`) and the tar, emits the last chunks, and checks
   * the blob's digest. A parse failure on bytes that are not the layer's is reported as the integrity failure
   * it really is.
   */
  complete(o: { label: string; layerDigest: Digest; hasher: DigestHasher; endDecoder: () => void }): void {
    try {
      o.endDecoder();
      this.tar.end();
    } catch (e) {
      const actual = o.hasher.digest();
      if (e instanceof FormatError && actual !== o.layerDigest) {
        throw new IntegrityError(`${o.label}: blob digest is ${actual}, expected ${o.layerDigest}`, {
          cause: e,
        });
      }
      throw e;
    }
    this.chunker.finish();
    const actual = o.hasher.digest();
    if (actual !== o.layerDigest) {
      throw new IntegrityError(`${o.label}: blob digest is ${actual}, expected ${o.layerDigest}`);
    }
    const diff = this.uncompressed?.digest();
    if (diff !== undefined && diff !== this.diffId) {
      throw new IntegrityError(
        `${o.label}: uncompressed digest is ${diff}, the image config's diffID ${this.diffId}`,
      );
    }
  }
}
