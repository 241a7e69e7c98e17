// zran against real gzip streams (GNU gzip -1/-9, Node zlib, multi-member): index, then decode from every
// checkpoint and compare with `gzip -dc`; corrupt and truncated input must be a FormatError.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { decodeChunk } from '../../src/codec/decode-chunk.js';
import { GzipIndexer } from '../../src/codec/gzip-indexer.js';
import { chunkFrom, gnuGzip, pipe, randomBytesSeeded, textPayload, zranIndex } from './payload.js';

const SPAN = 256 * 1024;

function index(gz: Buffer, pieceBytes = 50_000): { out: Buffer; ix: GzipIndexer } {
  const ix = new GzipIndexer({ spanBytes: SPAN });
  const parts: Buffer[] = [];
  for (let i = 0; i < gz.length; i += pieceBytes)
    ix.push(gz.subarray(i, i + pieceBytes), (o) => parts.push(Buffer.from(o)));
  ix.finish();
  return { out: Buffer.concat(parts), ix };
}

const text = textPayload(3_000_000, 1);
const mixed = Buffer.concat([
  textPayload(700_000, 2),
  randomBytesSeeded(300_000, 3),
  textPayload(900_000, 4),
]);
const cases: Array<[string, Buffer]> = [
  ['gzip -1', gnuGzip(text, 1)],
  ['gzip -9', gnuGzip(mixed, 9)],
  ['node zlib', gzipSync(text)],
  [
    'multi-member',
    Buffer.concat([
      gnuGzip(textPayload(600_000, 5), 6),
      gzipSync(mixed),
      gnuGzip(Buffer.alloc(0), 6),
      gnuGzip(textPayload(100_000, 6), 1),
    ]),
  ],
];

describe.each(cases)('zran on %s', (_name, gz) => {
  const expected = pipe('gzip', ['-dc'], gz);
  const { out, ix } = index(gz);

  it('streams exactly what gzip -dc outputs and records bit-offset checkpoints', () => {
    expect(out.equals(expected)).toBe(true);
    expect(ix.uncompressedProduced).toBe(expected.length);
    expect(ix.compressedConsumed).toBe(gz.length);
    expect(ix.checkpoints.length).toBeGreaterThan(3);
    expect(ix.checkpoints.some((c) => c.bits !== 0)).toBe(true);
    expect(ix.checkpoints[0]).toMatchObject({
      compressedOffset: 0,
      uncompressedOffset: 0,
      memberStart: true,
    });
    for (let i = 1; i < ix.checkpoints.length; i++) {
      expect(
        ix.checkpoints[i]!.uncompressedOffset - ix.checkpoints[i - 1]!.uncompressedOffset,
      ).toBeGreaterThanOrEqual(SPAN);
    }
  });

  it('decodes chunks from every checkpoint, including across the next spans and members', () => {
    const cps = ix.checkpoints;
    const chunks = cps.flatMap((cp, i) => {
      const at = cp.uncompressedOffset;
      const sizes = [1, 1000, Math.min(SPAN * 2 + 17, expected.length - at)];
      return sizes
        .filter((s) => at + 5 + s <= expected.length)
        .map((s) => chunkFrom(i, cp, at + 5, expected, s, gz.length));
    });
    const idx = zranIndex(cps, ix.windows, chunks, gz.length);
    chunks.forEach((c, i) => {
      const got = decodeChunk(idx, i, gz.subarray(c.compressedStart, c.compressedEnd));
      expect(got.equals(expected.subarray(c.offset, c.offset + c.size))).toBe(true);
    });
  });

  it('rejects a truncated span with FormatError, never a short result', () => {
    const cp = ix.checkpoints[1]!;
    const c = chunkFrom(1, cp, cp.uncompressedOffset, expected, 100_000, gz.length);
    const idx = zranIndex(ix.checkpoints, ix.windows, [c], gz.length);
    expect(() => decodeChunk(idx, 0, gz.subarray(c.compressedStart, c.compressedStart + 2000))).toThrow(
      FormatError,
    );
    expect(() => decodeChunk(idx, 0, gz.subarray(c.compressedStart, c.compressedStart))).toThrow(FormatError);
  });

  it('rejects truncated and corrupted streams while indexing', () => {
    expect(() => index(gz.subarray(0, Math.floor(gz.length / 2)))).toThrow(FormatError);
    const bad = Buffer.from(gz);
    for (let i = 0; i < 64; i++) {
      const at = Math.floor(gz.length / 3) + i * 97;
      bad[at] = bad[at]! ^ 0x5a;
    }
    expect(() => index(bad)).toThrow(FormatError);
  });
});

describe('gzip stream framing', () => {
  it('accepts trailing zeros after the last member and rejects trailing garbage or non-gzip', () => {
    const gz = gzipSync(textPayload(10_000, 9));
    expect(index(Buffer.concat([gz, Buffer.alloc(1000)])).out.length).toBe(10_000);
    expect(() => index(Buffer.concat([gz, Buffer.from('garbage')]))).toThrow(/trailing/);
    expect(() => index(Buffer.from('plain text, not gzip'))).toThrow(/not a gzip/);
    expect(() => new GzipIndexer().finish()).toThrow(/empty/);
  });

  it('decodes gzip-member chunks (eStargz style) across members with trailing data', () => {
    const a = textPayload(50_000, 10);
    const b = textPayload(70_000, 11);
    const gz = Buffer.concat([gzipSync(a), gzipSync(b), Buffer.from('footer-ish bytes')]);
    const both = Buffer.concat([a, b]);
    const base = zranIndex([], [], [], gz.length);
    const idx = {
      ...base,
      codec: 'gzip-member' as const,
      format: 'estargz' as const,
      chunks: [
        {
          digest: base.layerDigest,
          offset: 40_000,
          size: 60_000,
          compressedStart: 0,
          compressedEnd: gz.length,
          checkpoint: -1,
          skip: 40_000,
        },
      ],
    };
    expect(decodeChunk(idx, 0, gz).equals(both.subarray(40_000, 100_000))).toBe(true);
    expect(() => decodeChunk(idx, 0, gz.subarray(0, gz.length - 40_000))).toThrow(FormatError);
  });
});
