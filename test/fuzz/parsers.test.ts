// Property tests for the parsers that read registry-supplied bytes: manifests and indexes (parseManifest),
// Ferry's serialized layer index (deserializeIndex, including well-checksummed headers holding hostile JSON
// and gzip bombs), the eStargz footer and the zstd:chunked TOC. A value or a FerryError, bounded time/memory.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { parseManifest, MediaType } from '../../src/image/manifest.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { encodeEstargzFooter, parseEstargzFooter } from '../../src/index/estargz-footer.js';
import { deserializeIndex, indexToJson, serializeIndex } from '../../src/index/serialize.js';
import { parseZstdChunkedToc } from '../../src/index/zstd-chunked-toc.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from '../index/layer-fixture.js';
import { guarded, reportCounts } from './guard.js';

const digest = fc.oneof(
  fc.constant(sha256('x')),
  fc.string({ maxLength: 80 }),
  fc.stringMatching(/^sha(256|512):[0-9a-f]{0,130}$/),
);
const size = fc.oneof(fc.nat(), fc.constantFrom(-1, 2 ** 50, 2 ** 53, 1.5, Number.MAX_VALUE));
const descriptor = fc.record(
  {
    mediaType: fc.oneof(fc.constantFrom(...Object.values(MediaType)), fc.string({ maxLength: 40 })),
    digest,
    size,
    annotations: fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
    platform: fc.record({ os: fc.string({ maxLength: 10 }), architecture: fc.string({ maxLength: 10 }) }),
    urls: fc.array(fc.string({ maxLength: 30 }), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const manifestLike = fc.oneof(
  fc.record(
    {
      schemaVersion: fc.constantFrom(1, 2, 3, '2'),
      mediaType: fc.constantFrom(MediaType.ociManifest, MediaType.ociIndex, 'text/plain'),
      config: descriptor,
      layers: fc.array(descriptor, { maxLength: 4 }),
      manifests: fc.array(descriptor, { maxLength: 4 }),
      subject: descriptor,
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue(),
);
const contentType = fc.option(
  fc.oneof(
    fc.constantFrom(...Object.values(MediaType), 'text/html', 'application/json; charset=utf-8'),
    fc.string({ maxLength: 40 }),
  ),
  { nil: undefined },
);

afterAll(() => reportCounts('parsers'));

describe('fuzz: manifests', () => {
  it('parseManifest: structured and random JSON, random bytes, any Content-Type', () => {
    let parsed = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          manifestLike.map((j) => Buffer.from(JSON.stringify(j))),
          fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
        ),
        contentType,
        (bytes, type) => {
          const r = guarded('manifest', () => parseManifest(bytes, type, 'fuzz/ref:1'));
          if (!(r instanceof FerryError)) parsed++;
        },
      ),
      { numRuns: 4000 },
    );
    expect(parsed).toBeGreaterThan(0);
    // Past the size cap: refused before JSON.parse.
    const huge = Buffer.alloc(5 << 20, 0x20);
    expect(guarded('manifest', () => parseManifest(huge, undefined, 'fuzz/ref:1'))).toBeInstanceOf(
      FerryError,
    );
  });
});

describe('fuzz: serialized layer index', () => {
  const layer = makeLayer({ smallFiles: 40, seed: 3 });
  const blob = new MemoryBlobReader(layer.gz);
  const built = buildIndexFromStream({
    layerDigest: blob.digest,
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    blob,
    spanBytes: 256 * 1024,
  });

  /** A file with a valid magic, version and checksum around any header bytes and windows. */
  function wrap(header: Buffer, windows: Buffer = Buffer.alloc(0), headerLen = header.length): Buffer {
    const fixed = Buffer.alloc(16);
    fixed.write('FERRYIDX', 0, 'latin1');
    fixed.writeUInt32BE(1, 8);
    fixed.writeUInt32BE(headerLen >>> 0, 12);
    const body = Buffer.concat([fixed, header, windows]);
    return Buffer.concat([body, createHash('sha256').update(body).digest()]);
  }

  it('random bytes and bit-flipped valid files', async () => {
    const good = serializeIndex(await built);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
          fc
            .array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 })
            .map((muts) => {
              const b = Buffer.from(good);
              for (const [at, v] of muts) b[at] = v;
              return b;
            }),
          fc.nat(good.length).map((n) => good.subarray(0, n)),
        ),
        (bytes) => {
          guarded('index', () => deserializeIndex(bytes));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('well-checksummed files with hostile header JSON, lengths and windows', async () => {
    const index = await built;
    const json = indexToJson(index);
    const windows = Buffer.concat(index.windows);
    const value = fc.oneof(
      fc.jsonValue(),
      size,
      fc.constantFrom('', 'gzip', 'zran', 'file', 'dir', null),
      fc.array(size, { maxLength: 8 }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...Object.keys(json)), value), { maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(7), value), { maxLength: 3 }),
        fc.oneof(fc.constant(undefined), fc.nat(), fc.constantFrom(2 ** 31, 2 ** 32 - 1)),
        (topEdits, rowEdits, lie) => {
          const j = structuredClone(json) as Record<string, unknown>;
          for (const [k, v] of topEdits) j[k] = v;
          for (const [row, col, v] of rowEdits) {
            const table = j[(['chunks', 'checkpoints', 'entries'] as const)[row % 3] ?? 'chunks'];
            if (Array.isArray(table) && table.length > 0) {
              const r = table[row % table.length] as unknown;
              if (Array.isArray(r)) r[col % r.length] = v;
              else if (typeof r === 'object' && r !== null)
                (r as Record<string, unknown>)[Object.keys(r)[col % Object.keys(r).length] ?? 'x'] = v;
            }
          }
          const header = gzipSync(Buffer.from(JSON.stringify(j)));
          const r = guarded('index', () => deserializeIndex(wrap(header, windows, lie ?? header.length)));
          if (!(r instanceof FerryError)) accepted++;
        },
      ),
      { numRuns: 500 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it('a gzip bomb as the header is refused without inflating it', () => {
    const bomb = gzipSync(Buffer.alloc(128 << 20, 0x20), { level: 9 }); // ~128 KiB expanding to 128 MiB
    const r = guarded('index', () => deserializeIndex(wrap(bomb)), { maxAllocBytes: 64 << 20, maxMs: 5000 });
    expect(r).toBeInstanceOf(FerryError);
  });
});

describe('fuzz: eStargz footer and zstd:chunked TOC', () => {
  it('parseEstargzFooter: random tails, mutated footers, any blob size', () => {
    let found = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
          fc
            .tuple(
              fc.oneof(fc.nat(), fc.constantFrom(2 ** 50, 2 ** 53 + 2, 2 ** 63)),
              fc.boolean(),
              fc.array(fc.tuple(fc.nat(50), fc.nat(255)), { maxLength: 2 }),
            )
            .map(([off, legacy, muts]) => {
              const f = encodeEstargzFooter(Math.min(off, Number.MAX_SAFE_INTEGER), legacy);
              for (const [at, v] of muts) if (at < f.length) f[at] = v;
              return f;
            }),
        ),
        fc.oneof(fc.nat(), fc.constantFrom(0, 47, 51, 2 ** 53)),
        (tail, blobSize) => {
          const r = guarded('footer', () => parseEstargzFooter(tail, blobSize));
          expect(r).not.toBeInstanceOf(FerryError); // documented: never throws
          if (r !== undefined && !(r instanceof FerryError)) {
            found++;
            expect(r.tocOffset).toBeLessThan(blobSize - r.footerSize);
            expect(r.tocOffset).toBeGreaterThanOrEqual(0);
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(found).toBeGreaterThan(0);
  });

  it('parseZstdChunkedToc: random JSON and entry shapes', () => {
    const entry = fc.record(
      {
        type: fc.constantFrom('reg', 'chunk', 'dir', 'symlink', 'hardlink', 'char', 'x'),
        name: fc.string({ maxLength: 40 }),
        size: size,
        offset: size,
        endOffset: size,
        chunkOffset: size,
        chunkSize: size,
        digest: digest,
        chunkDigest: digest,
        mode: size,
        linkName: fc.string({ maxLength: 20 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue(),
          fc.record({ version: fc.constantFrom(1, 2), entries: fc.array(entry, { maxLength: 6 }) }),
        ),
        (toc) => {
          guarded('zstd-toc', () => parseZstdChunkedToc(Buffer.from(JSON.stringify(toc) ?? 'null'), 'fuzz'));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
