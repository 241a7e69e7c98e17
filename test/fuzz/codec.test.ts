// Property tests for gzip/zran: the streaming indexer over multi-member gzip with random header flags and
// mutations, pushed in random pieces; decodeChunk over a real zran index with hostile chunk and checkpoint
// fields (sizes up to 2^50, bit offsets, windows, spans). A value or a FerryError, bounded time/memory.
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors.js';
import { decodeChunk } from '../../src/codec/decode-chunk.js';
import { GzipIndexer } from '../../src/codec/gzip-indexer.js';
import type { Chunk, Checkpoint } from '../../src/image/layer-index.js';
import { textPayload, zranIndex } from '../codec/payload.js';
import { guarded, reportCounts } from './guard.js';

afterAll(() => reportCounts('codec'));

const payload = textPayload(200_000, 11);
const members = [gzipSync(payload.subarray(0, 90_000)), gzipSync(payload.subarray(90_000), { level: 1 })];
const multi = Buffer.concat(members);

/** A gzip header with random flags (FEXTRA with any XLEN, FNAME/FCOMMENT maybe unterminated, FHCRC). */
const header = fc
  .record({
    flags: fc.nat(255),
    xlen: fc.nat(65535),
    extra: fc.uint8Array({ maxLength: 300 }),
    name: fc.uint8Array({ maxLength: 40 }),
  })
  .map(({ flags, xlen, extra, name }) => {
    const parts = [Buffer.from([0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3])];
    if (flags & 4) parts.push(Buffer.from([xlen & 0xff, xlen >> 8]), Buffer.from(extra));
    if (flags & 8) parts.push(Buffer.from(name));
    return Buffer.concat(parts);
  });

describe('fuzz: gzip indexer', () => {
  it('multi-member streams with random headers, mutations and truncation, in random pieces', () => {
    let indexed = 0;
    fc.assert(
      fc.property(
        fc.option(header, { nil: undefined }),
        fc.array(fc.tuple(fc.nat(multi.length - 1), fc.nat(255)), { maxLength: 3 }),
        fc.oneof(fc.constant(multi.length), fc.nat(multi.length)),
        fc.integer({ min: 1, max: 70_000 }),
        fc.integer({ min: 1024, max: 128 * 1024 }),
        (hdr, muts, cut, piece, spanBytes) => {
          const input = Buffer.concat([hdr ?? Buffer.alloc(0), multi]);
          for (const [at, v] of muts) input[at] = v;
          const data = input.subarray(0, cut + (hdr?.length ?? 0));
          let out = 0;
          const r = guarded('gzip-indexer', () => {
            const ix = new GzipIndexer({ spanBytes });
            for (let i = 0; i < data.length; i += piece)
              ix.push(data.subarray(i, i + piece), (o) => (out += o.length));
            ix.finish();
            return ix;
          });
          if (!(r instanceof FerryError)) {
            indexed++;
            expect(r.windows.length).toBe(new Set(r.checkpoints.map((c) => c.window)).size);
            expect(out).toBeLessThanOrEqual(payload.length * 2);
          }
        },
      ),
      { numRuns: 600 },
    );
    expect(indexed).toBeGreaterThan(0);
  });
});

describe('fuzz: decodeChunk over a real zran index', () => {
  const ix = new GzipIndexer({ spanBytes: 16 * 1024 });
  ix.push(multi, () => undefined);
  ix.finish();
  const cps = ix.checkpoints;
  const wins = ix.windows;

  const big = fc.oneof(
    fc.nat(300_000),
    fc.constantFrom(2 ** 31, 2 ** 32 + 1, 2 ** 50, Number.MAX_SAFE_INTEGER),
  );
  it('hostile chunk and checkpoint fields', () => {
    fc.assert(
      fc.property(
        fc.nat(cps.length - 1),
        fc.record({ size: big, skip: big, compressedStart: big, compressedEnd: big }),
        fc.record({
          bits: fc.nat(7),
          compressedOffset: big,
          uncompressedOffset: big,
          window: fc.nat(cps.length + 2),
          memberStart: fc.boolean(),
        }),
        fc.boolean(),
        fc.nat(multi.length),
        (cpIndex, c, cpEdit, editCp, spanLen) => {
          const cp: Checkpoint = editCp ? cpEdit : cps[cpIndex]!;
          const chunk: Chunk = {
            digest: zranIndex([], [], [], 0).layerDigest,
            offset: 0,
            size: c.size,
            compressedStart: cp.compressedOffset,
            compressedEnd: c.compressedEnd,
            checkpoint: 0,
            skip: c.skip,
          };
          const from = Math.min(cps[cpIndex]!.compressedOffset, multi.length);
          const span = multi.subarray(from, Math.min(multi.length, from + spanLen));
          const index = zranIndex([cp], [wins[cp.window] ?? new Uint8Array(0)], [chunk], multi.length);
          guarded('decode-chunk', () => decodeChunk(index, 0, span), { maxAllocBytes: 64 << 20 });
          guarded('decode-chunk', () => decodeChunk({ ...index, codec: 'gzip-member' }, 0, span), {
            maxAllocBytes: 64 << 20,
          });
          guarded('decode-chunk', () => decodeChunk({ ...index, codec: 'identity' }, 0, span), {
            maxAllocBytes: 64 << 20,
          });
        },
      ),
      { numRuns: 800 },
    );
  });
});
