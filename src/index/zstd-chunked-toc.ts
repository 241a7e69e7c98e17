// The zstd:chunked TOC (containers/storage "manifest", CRFS-style JSON) and its mapping to LayerIndex chunks in
// a virtual uncompressed coordinate space, as for eStargz. Every file chunk is its own zstd frame.
import { z } from 'zod';
import { FormatError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { TOC_LIMITS, tocEntrySchema } from '../image/estargz-toc.js';
import type { Chunk } from '../image/layer-index.js';
import type { ChunkMapping, FilePayload } from './estargz-chunks.js';

const u64 = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

// Same fields as the eStargz TOC plus endOffset (compressed end of a file's last frame) and chunkType.
const entrySchema = tocEntrySchema.extend({
  endOffset: u64.optional(),
  chunkType: z.string().max(16).optional(),
});

const tocSchema = z.object({
  version: z.literal(1),
  entries: z.array(entrySchema).max(TOC_LIMITS.maxEntries),
});

export type ZstdChunkedEntry = z.infer<typeof entrySchema>;
export type ZstdChunkedToc = z.infer<typeof tocSchema>;

/** Parses and validates TOC JSON; anything malformed or beyond TOC_LIMITS is a FormatError. */
export function parseZstdChunkedToc(json: Uint8Array, what: string): ZstdChunkedToc {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8'));
  } catch (e) {
    throw new FormatError(`${what}: zstd:chunked TOC is not valid JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const parsed = tocSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FormatError(
      `${what}: invalid zstd:chunked TOC at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'unknown'}`,
    );
  }
  return parsed.data;
}

/**
 * Chunks in TOC order. A chunked file is a `reg` entry (first chunk) followed by `chunk` entries; an
 * unchunked file is one chunk, verified by the file digest. A chunk's span runs from its frame start to the
 * next chunk's frame, or for a file's last chunk to the file's endOffset (falling back to the next payload's
 * offset, then to `dataEnd`, where the TOC's skippable frame starts).
 */
export function mapZstdChunkedChunks(
  toc: ZstdChunkedToc,
  dataEnd: number,
  hidden: (index: number) => boolean,
  what: string,
): ChunkMapping {
  const entries = toc.entries;
  const chunks: Chunk[] = [];
  const files = new Map<number, FilePayload>();
  let virtual = 0;
  let cur:
    | {
        name: string;
        size: number;
        next: number;
        hidden: boolean;
        endOffset: number | undefined;
        digest: string | undefined;
      }
    | undefined;
  // Index in `chunks` of the previous chunk of the current file, whose end is not known yet.
  let open: { chunk: Chunk; at: number } | undefined;

  const nextPayloadOffset = (from: number): number => {
    for (let j = from; j < entries.length; j++) {
      const o = entries[j]!.offset;
      if (o !== undefined && o > 0) return o;
    }
    return dataEnd;
  };
  const close = (end: number): void => {
    if (open === undefined) return;
    const c = open.chunk;
    if (end <= c.compressedStart || end > dataEnd) {
      throw new FormatError(
        `${what}: zstd:chunked chunk of ${JSON.stringify(cur?.name)} has a bad span [${c.compressedStart}, ${end})`,
      );
    }
    if (open.at >= 0) chunks[open.at] = { ...c, compressedEnd: end };
    open = undefined;
  };
  const finishFile = (i: number): void => {
    if (cur === undefined) return;
    close(cur.endOffset !== undefined && cur.endOffset > 0 ? cur.endOffset : nextPayloadOffset(i));
    if (cur.next !== cur.size) {
      throw new FormatError(
        `${what}: zstd:chunked file ${JSON.stringify(cur.name)} has chunks for ${cur.next} of ${cur.size} bytes`,
      );
    }
    cur = undefined;
  };

  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.type !== 'chunk') finishFile(i);
    if (e.type === 'reg') {
      const size = e.size ?? 0;
      files.set(i, { dataOffset: hidden(i) ? 0 : virtual, size });
      if (size === 0) continue;
      cur = { name: e.name, size, next: 0, hidden: hidden(i), endOffset: e.endOffset, digest: e.digest };
    } else if (e.type === 'chunk') {
      if (cur === undefined) {
        throw new FormatError(
          `${what}: zstd:chunked chunk entry #${i} does not follow a non-empty regular file`,
        );
      }
    } else {
      continue;
    }
    const file = cur;
    const chunkOffset = e.chunkOffset ?? 0;
    if (chunkOffset !== file.next) {
      throw new FormatError(
        `${what}: zstd:chunked file ${JSON.stringify(file.name)} chunk at ${chunkOffset}, expected ${file.next}`,
      );
    }
    const size = e.chunkSize !== undefined && e.chunkSize > 0 ? e.chunkSize : file.size - chunkOffset;
    if (size <= 0 || chunkOffset + size > file.size) {
      throw new FormatError(
        `${what}: zstd:chunked file ${JSON.stringify(file.name)} has a chunk outside its ${file.size} bytes`,
      );
    }
    // Unchunked files carry only the file digest, which then names the single chunk.
    const digest = e.chunkDigest ?? (chunkOffset === 0 && size === file.size ? file.digest : undefined);
    if (digest === undefined) {
      throw new FormatError(
        `${what}: zstd:chunked entry ${JSON.stringify(file.name)} has no digest; cannot verify`,
      );
    }
    const start = e.offset ?? 0;
    if (start <= 0 || start >= dataEnd) {
      throw new FormatError(
        `${what}: zstd:chunked entry ${JSON.stringify(file.name)} has a bad offset ${start}`,
      );
    }
    close(start);
    file.next = chunkOffset + size;
    const chunk: Chunk = {
      digest: digest as Digest,
      offset: virtual,
      size,
      compressedStart: start,
      compressedEnd: start,
      checkpoint: -1,
      skip: 0,
    };
    if (file.hidden) {
      open = { chunk, at: -1 };
      continue;
    }
    open = { chunk, at: chunks.length };
    chunks.push(chunk);
    virtual += size;
  }
  finishFile(entries.length);
  return { chunks, files, uncompressedSize: virtual };
}
