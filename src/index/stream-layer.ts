// Reads a layer blob once for a stream index builder: hashes every byte, feeds the parser in bounded pieces and
// gives the event loop a turn every MAX_BUSY_MS (FUSE callbacks share it). A parse failure stops the parsing
// but not the hashing: when the bytes are not the layer's, the digest check is the failure to report.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { FormatError } from '../errors.js';
import type { DigestHasher } from '../image/digest.js';

/** Largest piece parsed between event-loop checks, and how long the builder may hold the loop. */
const MAX_PIECE_BYTES = 64 * 1024;
const MAX_BUSY_MS = 20;

export interface StreamLayerOptions {
  input: AsyncIterable<Uint8Array>;
  hasher: DigestHasher;
  /** Parses one piece; `end` is the stream offset just past it. A FormatError stops the parsing. */
  feed(piece: Buffer, end: number): void;
  /** Throws when the build is aborted (checked between pieces). */
  checkAbort(): void;
  /** After each piece of input: the bytes read so far. */
  onProgress?: ((bytes: number) => void) | undefined;
}

export interface StreamedLayer {
  /** Every byte of the stream (the compressed size). */
  bytes: number;
  /** Why parsing stopped early, to be thrown once the digest has been checked. */
  formatError: FormatError | undefined;
}

export async function streamLayer(o: StreamLayerOptions): Promise<StreamedLayer> {
  let bytes = 0;
  let formatError: FormatError | undefined;
  let busySince = Date.now();
  for await (const chunk of o.input) {
    o.checkAbort();
    const raw = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    o.hasher.update(raw);
    if (formatError !== undefined) {
      bytes += raw.length;
      continue;
    }
    for (let i = 0; i < raw.length; i += MAX_PIECE_BYTES) {
      const piece = raw.subarray(i, Math.min(raw.length, i + MAX_PIECE_BYTES));
      try {
        o.feed(piece, bytes + i + piece.length);
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        formatError = e;
        break;
      }
      if (Date.now() - busySince > MAX_BUSY_MS) {
        await yieldToEventLoop();
        o.checkAbort();
        busySince = Date.now();
      }
    }
    bytes += raw.length;
    o.onProgress?.(bytes);
  }
  return { bytes, formatError };
}
