// The chunking policy of ChunkBuilder on synthetic tar-like layouts: chunks start at file starts, small files
// sit whole in small packs, big files get chunk-size chunks, and no layout of files can multiply the chunks.
import { describe, expect, it } from 'vitest';
import { DEFAULT_PACK_SIZE_BYTES } from '../../src/image/layer-index.js';
import { ChunkBuilder, type RawChunk } from '../../src/index/chunk-builder.js';

const KiB = 1024;
const CHUNK = 1024 * KiB;
const PACK = DEFAULT_PACK_SIZE_BYTES;
/** A tar header before each file's data, and data padded to 512 bytes, as in a real tar stream. */
const HEADER = 512;

interface Laid {
  dataOffset: number;
  size: number;
}

/** Lays the files out as a tar stream would and streams zeros past the builder in 64 KiB pieces. */
function run(
  sizes: readonly number[],
  chunkSizeBytes = CHUNK,
): { chunks: RawChunk[]; files: Laid[]; end: number } {
  const files: Laid[] = [];
  let pos = 0;
  for (const size of sizes) {
    files.push({ dataOffset: pos + HEADER, size });
    pos += HEADER + Math.ceil(size / 512) * 512;
  }
  const end = pos + 1024;
  const b = new ChunkBuilder({ chunkSizeBytes });
  const zeros = Buffer.alloc(64 * KiB);
  let out = 0;
  const streamTo = (to: number): void => {
    while (out < to) {
      const n = Math.min(zeros.length, to - out);
      b.addOutput(zeros.subarray(0, n), out + n);
      b.flush();
      out += n;
    }
  };
  for (const f of files) {
    streamTo(f.dataOffset - HEADER + 1); // the header has been parsed
    b.addFile(f.dataOffset, f.size);
  }
  streamTo(end);
  b.finish();
  return { chunks: b.chunks, files, end };
}

function covering(chunks: readonly RawChunk[], f: Laid): RawChunk[] {
  return chunks.filter((c) => c.offset < f.dataOffset + f.size && c.offset + c.size > f.dataOffset);
}

/** The bound the builder promises: about 2 chunks per pack of stream, plus one per big file (quarter chunk). */
function bound(end: number, chunkSizeBytes = CHUNK): number {
  return Math.ceil((2 * end) / PACK + (2 * end) / (chunkSizeBytes / 4)) + 2;
}

describe('chunking policy', () => {
  it('starts every chunk at a file start (or a chunk into a big file); no small file straddles two', () => {
    const sizes = Array.from({ length: 400 }, (_, i) =>
      i % 37 === 0 ? 3 * CHUNK + 1234 : 200 + ((i * 7919) % 20_000),
    );
    const { chunks, files } = run(sizes);
    const starts = new Set<number>();
    for (const f of files) {
      if (f.size >= CHUNK / 4) for (let o = 0; o < f.size; o += CHUNK) starts.add(f.dataOffset + o);
      else starts.add(f.dataOffset);
    }
    for (const c of chunks) expect(starts.has(c.offset), `chunk at ${c.offset}`).toBe(true);
    for (const f of files) {
      const cs = covering(chunks, f);
      if (f.size < CHUNK / 4) expect(cs).toHaveLength(1);
      expect(
        cs.reduce(
          (s, c) => s + Math.min(c.offset + c.size, f.dataOffset + f.size) - Math.max(c.offset, f.dataOffset),
          0,
        ),
      ).toBe(f.size);
    }
    for (let i = 1; i < chunks.length; i++)
      expect(chunks[i]!.offset).toBeGreaterThanOrEqual(chunks[i - 1]!.offset + chunks[i - 1]!.size);
  });

  it('gives a region of small files small chunks and big files chunk-size ones', () => {
    const small = Array.from({ length: 300 }, (_, i) => 500 + ((i * 104_729) % 12_000));
    const { chunks, files } = run([...small, 5 * CHUNK, ...small]);
    const big = files[small.length]!;
    const bigChunks = covering(chunks, big);
    expect(bigChunks.map((c) => c.size)).toEqual([CHUNK, CHUNK, CHUNK, CHUNK, CHUNK]);
    const packs = chunks.filter((c) => !bigChunks.includes(c));
    for (const c of packs) expect(c.size).toBeLessThanOrEqual(PACK);
    // Packs are filled: ~2 × 300 files of ~6.5 KiB with headers over 128 KiB packs, not one per file.
    const packed = packs.reduce((s, c) => s + c.size, 0);
    expect(packs.length).toBeLessThanOrEqual(Math.ceil(packed / (PACK / 2)) + 2);
    expect(packs.length).toBeGreaterThanOrEqual(Math.floor(packed / PACK));
  });

  it('packs with the configured chunk size when it is smaller than a pack', () => {
    const { chunks } = run(
      Array.from({ length: 100 }, () => 3000),
      16 * KiB,
    );
    for (const c of chunks) expect(c.size).toBeLessThanOrEqual(16 * KiB);
    expect(chunks.length).toBeLessThan(100);
  });

  describe('a hostile layout cannot multiply the chunks', () => {
    const layouts: Array<[string, number[]]> = [
      ['tiny files', Array.from({ length: 20_000 }, () => 1)],
      [
        'a tiny file before each file of a pack',
        Array.from({ length: 2_000 }, (_, i) => (i % 2 === 0 ? 1 : PACK)),
      ],
      [
        'a tiny file before each file of half a pack',
        Array.from({ length: 2_000 }, (_, i) => (i % 2 === 0 ? 1 : PACK / 2)),
      ],
      [
        'a tiny file before each big file',
        Array.from({ length: 1_000 }, (_, i) => (i % 2 === 0 ? 1 : CHUNK / 4)),
      ],
      ['files just under a quarter chunk', Array.from({ length: 500 }, () => CHUNK / 4 - 1)],
    ];
    it.each(layouts)('%s', (_name, sizes) => {
      const { chunks, end } = run(sizes);
      expect(chunks.length).toBeLessThanOrEqual(bound(end));
      for (const c of chunks) expect(c.size).toBeLessThanOrEqual(CHUNK);
    });
  });
});

describe('chunk bytes given to onChunk', () => {
  it('stay right after the stream reuses its output buffer (a decoder writes the next piece into it)', () => {
    const kept: Array<{ bytes: Buffer; expected: Buffer }> = [];
    const b = new ChunkBuilder({
      chunkSizeBytes: CHUNK,
      onChunk: (_i, bytes) => kept.push({ bytes, expected: Buffer.from(bytes) }),
    });
    // One reused 128 KiB output buffer, as zstd's streaming decoder has; a small file and then a big one, so the
    // small file's pack closes inside the piece that holds it.
    const out = Buffer.alloc(128 * KiB);
    b.addFile(HEADER, 100 * KiB);
    b.addFile(HEADER + 100 * KiB + HEADER, 600 * KiB);
    let pos = 0;
    for (let piece = 0; pos < 1024 * KiB; piece++) {
      out.fill(piece + 1);
      b.addOutput(out, pos + out.length);
      b.flush();
      pos += out.length;
    }
    b.finish();
    expect(kept.length).toBeGreaterThan(0);
    for (const k of kept) expect(k.bytes.equals(k.expected)).toBe(true);
  });
});
