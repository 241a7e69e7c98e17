// Maps eStargz TOC payload entries (reg/chunk) to LayerIndex chunks in a virtual uncompressed coordinate space.
// Each chunk's compressed span starts at its gzip member and ends where the next distinct member begins.
import { FormatError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { EstargzToc, TocEntry } from '../image/estargz-toc.js';
import type { Chunk } from '../image/layer-index.js';

/** One regular file's payload, keyed by the TOC index of its `reg` entry. */
export interface FilePayload {
  /** Virtual offset of the file's first byte (the running sum when the file is empty). */
  readonly dataOffset: number;
  readonly size: number;
}

export interface ChunkMapping {
  readonly chunks: Chunk[];
  /** TOC index of each `reg` entry → where its bytes live. */
  readonly files: Map<number, FilePayload>;
  readonly uncompressedSize: number;
}

function isPayload(e: TocEntry): boolean {
  return e.type === 'chunk' || (e.type === 'reg' && (e.size ?? 0) > 0);
}

/**
 * End of each payload entry's compressed span: the offset of the next payload entry in TOC order whose member
 * differs (entries packed with innerOffset share one member), or the TOC offset for the last. Indexed like
 * toc.entries; undefined for non-payload entries.
 */
function memberEnds(entries: readonly TocEntry[], tocOffset: number): (number | undefined)[] {
  const ends: (number | undefined)[] = new Array<number | undefined>(entries.length);
  let nextStart = tocOffset;
  let runOffset: number | undefined;
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (!isPayload(e)) continue;
    const off = e.offset ?? 0;
    if (runOffset !== undefined && off !== runOffset) nextStart = runOffset;
    runOffset = off;
    ends[i] = nextStart;
  }
  return ends;
}

/**
 * Builds the chunk list. `hidden(i)` says whether TOC entry i is hidden from the tree (TOC, landmarks): its
 * chunks are left out. Throws FormatError for missing chunk digests, gaps, overlaps or spans outside the blob.
 */
export function mapEstargzChunks(
  toc: EstargzToc,
  tocOffset: number,
  hidden: (index: number) => boolean,
  what: string,
): ChunkMapping {
  const entries = toc.entries;
  const ends = memberEnds(entries, tocOffset);
  const chunks: Chunk[] = [];
  const files = new Map<number, FilePayload>();
  let virtual = 0;
  // The file whose chunks are being read: its reg index, size, and the next expected chunkOffset.
  let cur: { index: number; name: string; size: number; next: number; hidden: boolean } | undefined;

  const finish = (): void => {
    if (cur && cur.next !== cur.size) {
      throw new FormatError(
        `${what}: eStargz file ${JSON.stringify(cur.name)} has chunks for ${cur.next} of ${cur.size} bytes`,
      );
    }
    cur = undefined;
  };

  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.type !== 'chunk') finish();
    if (e.type === 'reg') {
      const size = e.size ?? 0;
      files.set(i, { dataOffset: hidden(i) ? 0 : virtual, size });
      if (size === 0) continue;
      cur = { index: i, name: e.name, size, next: 0, hidden: hidden(i) };
    } else if (e.type === 'chunk') {
      if (!cur)
        throw new FormatError(`${what}: eStargz chunk entry #${i} does not follow a non-empty regular file`);
    } else {
      continue;
    }
    const file = cur;
    const chunkOffset = e.chunkOffset ?? 0;
    if (chunkOffset !== file.next) {
      throw new FormatError(
        `${what}: eStargz file ${JSON.stringify(file.name)} chunk at ${chunkOffset}, expected ${file.next}`,
      );
    }
    const size = e.chunkSize !== undefined && e.chunkSize > 0 ? e.chunkSize : file.size - chunkOffset;
    if (size <= 0 || chunkOffset + size > file.size) {
      throw new FormatError(
        `${what}: eStargz file ${JSON.stringify(file.name)} has a chunk outside its ${file.size} bytes`,
      );
    }
    if (e.chunkDigest === undefined) {
      throw new FormatError(
        `${what}: eStargz entry ${JSON.stringify(file.name)} has no chunk digests; cannot verify`,
      );
    }
    const start = e.offset ?? 0;
    const end = ends[i] ?? tocOffset;
    if (end <= start || end > tocOffset) {
      throw new FormatError(
        `${what}: eStargz entry ${JSON.stringify(file.name)} has a bad compressed span [${start}, ${end})`,
      );
    }
    file.next = chunkOffset + size;
    if (file.hidden) continue;
    chunks.push({
      digest: e.chunkDigest as Digest,
      offset: virtual,
      size,
      compressedStart: start,
      compressedEnd: end,
      checkpoint: -1,
      skip: e.innerOffset ?? 0,
    });
    virtual += size;
  }
  finish();
  return { chunks, files, uncompressedSize: virtual };
}
