// Property tests: arbitrary bytes into the tar parser, the gzip indexer and the chunk decoder give a value
// or a FerryError, never another exception or a hang.
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors.js';
import { decodeChunk } from '../../src/codec/decode-chunk.js';
import { GzipIndexer } from '../../src/codec/gzip-indexer.js';
import { TarParser } from '../../src/image/tar.js';
import { zranIndex } from './payload.js';
import { textPayload } from './payload.js';

function valueOrFerryError(f: () => void): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof FerryError)) throw e;
  }
}

const validTarHeader = (() => {
  const h = Buffer.alloc(512);
  h.write('file.txt', 0);
  h.write('0000644\0', 100);
  h.write('00000000012\0', 124);
  h.write('0', 156);
  h.write('ustar\u000000', 257);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
})();

describe('fuzz', () => {
  it('TarParser: arbitrary bytes and mutated headers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 700 }), (bytes, piece) => {
        valueOrFerryError(() => {
          const p = new TarParser({ onEntry: () => {}, onData: () => {} });
          for (let i = 0; i < bytes.length; i += piece) p.push(bytes.subarray(i, i + piece));
          p.end();
        });
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(511), fc.nat(255)), { maxLength: 8 }), (muts) => {
        const h = Buffer.concat([validTarHeader, Buffer.alloc(1536)]);
        for (const [at, v] of muts) h[at] = v;
        valueOrFerryError(() => {
          const p = new TarParser({ onEntry: () => {} });
          p.push(h);
          p.end();
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('GzipIndexer and decodeChunk: arbitrary and mutated gzip', () => {
    const good = gzipSync(textPayload(20_000, 5));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.boolean(), (bytes, withMagic) => {
        const input = withMagic
          ? Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), bytes])
          : Buffer.from(bytes);
        valueOrFerryError(() => {
          const ix = new GzipIndexer({ spanBytes: 1024 });
          ix.push(input, () => {});
          ix.finish();
        });
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        fc.nat(30_000),
        fc.nat(20_000),
        (muts, skip, size) => {
          const bad = Buffer.from(good);
          for (const [at, v] of muts) bad[at] = v;
          valueOrFerryError(() => {
            const ix = new GzipIndexer({ spanBytes: 4096 });
            ix.push(bad, () => {});
            ix.finish();
          });
          const cp = { compressedOffset: 0, bits: 0, uncompressedOffset: 0, window: 0, memberStart: true };
          const chunk = {
            digest: zranIndex([], [], [], 0).layerDigest,
            offset: skip,
            size,
            compressedStart: 0,
            compressedEnd: bad.length,
            checkpoint: 0,
            skip,
          };
          valueOrFerryError(
            () => void decodeChunk(zranIndex([cp], [new Uint8Array(0)], [chunk], bad.length), 0, bad),
          );
          valueOrFerryError(
            () =>
              void decodeChunk({ ...zranIndex([], [], [chunk], bad.length), codec: 'gzip-member' }, 0, bad),
          );
        },
      ),
      { numRuns: 300 },
    );
    expect(true).toBe(true);
  });
});
