// The index validator: every real builder's index passes it (tar, gzip, zstd, eStargz, zstd:chunked, GNU tar
// with every entry kind); a published index that breaks one rule — forged and re-sealed with the documented
// format, gzip'd JSON header and SHA-256 trailer — is refused by deserializeIndex with a FormatError naming
// the rule; random forgeries are refused or still a sane index, never a crash.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FerryError, FormatError } from '../../src/errors.js';
import { chunksCovering, type LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { deserializeIndex, indexToJson, serializeIndex } from '../../src/index/serialize.js';
import { validateIndex } from '../../src/index/validate-index.js';
import { buildZstdChunkedIndex, zstdChunkedManifestRef } from '../../src/index/zstd-chunked.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { writeZstdChunked } from '../helpers/zstd-chunked-writer.js';
import { gnuTar, makeTree } from '../image/tar-fixtures.js';
import { writeAndIndex } from './estargz-test-utils.js';
import { makeLayer } from './layer-fixture.js';

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

const layer = makeLayer({ smallFiles: 60, seed: 5 });

async function build(data: Buffer, mediaType: string): Promise<LayerIndex> {
  const blob = new MemoryBlobReader(data);
  return buildIndexFromStream({ layerDigest: blob.digest, mediaType, blob, spanBytes: 256 * 1024 });
}

const gz = await build(layer.gz, GZIP);

type Row = unknown[];
type Obj = Record<string, unknown>;
interface Json {
  mediaType: string;
  format: string;
  codec: string;
  compressedSize: number;
  uncompressedSize: number;
  entries: Obj[];
  chunks: Row[];
  checkpoints: Row[];
  windowSizes: number[];
  [k: string]: unknown;
}

/** A well-sealed index file around any header JSON and windows: what an attacker with push access makes. */
function seal(json: unknown, windows: Buffer): Buffer {
  const header = gzipSync(Buffer.from(JSON.stringify(json)));
  const fixed = Buffer.alloc(16);
  fixed.write('FERRYIDX', 0, 'latin1');
  fixed.writeUInt32BE(1, 8);
  fixed.writeUInt32BE(header.length, 12);
  const body = Buffer.concat([fixed, header, windows]);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/** `base` serialized, its JSON changed by `edit`, re-sealed. */
function forge(edit: (j: Json, windows: Uint8Array[]) => void, base: LayerIndex = gz): Buffer {
  const j = structuredClone(indexToJson(base)) as unknown as Json;
  const windows = base.windows.map((w) => new Uint8Array(w));
  edit(j, windows);
  j.windowSizes = windows.map((w) => w.length);
  return seal(j, Buffer.concat(windows));
}

function entry(j: Json, path: string): Obj {
  const e = j.entries.find((x) => x['path'] === path);
  if (e === undefined) throw new Error(`fixture has no ${path}`);
  return e;
}

/** Inserts an entry keeping the list sorted (the forgery must break only the rule under test). */
function insert(j: Json, e: Obj): void {
  j.entries.push(e);
  j.entries.sort((a, b) => ((a['path'] as string) < (b['path'] as string) ? -1 : 1));
}

const plain = (path: string, extra: Obj = {}): Obj => ({
  path,
  type: 'fifo',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 0,
  mtimeMs: 0,
  ...extra,
});

describe('validateIndex passes every real builder', () => {
  it('tar, gzip, zstd (single and multi-frame), GNU tar of every entry kind, after a round trip', async () => {
    const zst = execFileSync('zstd', ['-3', '-q', '-c'], { input: layer.tar, maxBuffer: 1 << 30 });
    const tree = makeTree({ long: true });
    const built = [
      gz,
      await build(layer.tar, TAR),
      await build(zst, ZSTD),
      await build(gnuTar(tree, 'pax'), TAR),
      await build(gzipSync(gnuTar(tree, 'gnu')), GZIP),
    ];
    for (const index of built) {
      expect(() => validateIndex(index)).not.toThrow();
      expect(deserializeIndex(serializeIndex(index)).entries.length).toBe(index.entries.length);
    }
    // The fixture's hardlink, whiteout and opaque dir survive with the rules applied.
    expect(gz.entries.find((e) => e.path === 'dir5/hard-big')?.linkTarget).toBe('big-text.bin');
    expect(gz.entries.find((e) => e.path === 'dir1/gone')?.type).toBe('whiteout');
  });

  it('eStargz and zstd:chunked indexes (validated on their way out of the builders)', async () => {
    const es = await writeAndIndex([
      { path: 'd', type: 'dir' },
      { path: 'd/a.txt', type: 'file', content: Buffer.from('a'.repeat(5000)) },
      { path: 'd/l', type: 'hardlink', linkTarget: 'd/a.txt' },
      { path: 's', type: 'symlink', linkTarget: 'd/a.txt' },
      { path: 'big', type: 'file', content: Buffer.alloc(300_000, 3) },
    ]);
    expect(() => validateIndex(es.index)).not.toThrow();
    const z = writeZstdChunked(layer.tar, { chunkSizeBytes: 256 * 1024 });
    const blob = new MemoryBlobReader(z.blob);
    const manifest = zstdChunkedManifestRef(z.annotations, 'test')!;
    const zi = await buildZstdChunkedIndex({ layerDigest: blob.digest, mediaType: ZSTD, blob, manifest });
    expect(() => validateIndex(zi)).not.toThrow();
    expect(() => deserializeIndex(serializeIndex(zi))).not.toThrow();
  });
});

describe('a forged, re-sealed index is refused with the rule it breaks', () => {
  const file = (j: Json): Obj => entry(j, 'big-text.bin');
  const cases: Array<[string, RegExp, (j: Json, w: Uint8Array[]) => void]> = [
    [
      '.. in a path',
      /path not normalised \(path has a "\.\." component\)/,
      (j) => insert(j, plain('dir0/..')),
    ],
    ['. in a path', /path has a "\." component/, (j) => insert(j, plain('dir0/./x'))],
    ['NUL in a path', /path contains NUL/, (j) => insert(j, plain('dir0/a\0b'))],
    ['a leading /', /path starts with \//, (j) => insert(j, plain('/etc'))],
    ['a trailing /', /path ends with \//, (j) => insert(j, plain('dir0/x/'))],
    ['an empty component', /empty component/, (j) => insert(j, plain('dir0//x'))],
    [
      'a path over 4096 bytes',
      /path longer than 4096/,
      (j) => insert(j, plain(`dir0/${'a/'.repeat(2100)}a`)),
    ],
    [
      'a name over 255 bytes',
      /component longer than 255/,
      (j) => insert(j, plain(`dir0/${'n'.repeat(256)}`)),
    ],
    ['unsorted entries', /not sorted/, (j) => j.entries.push(j.entries.splice(1, 1)[0]!)],
    ['a duplicate path', /duplicate path: entry "dir0"/, (j) => insert(j, plain('dir0'))],
    ['a missing parent', /parent dir missing: entry "nodir\/x"/, (j) => insert(j, plain('nodir/x'))],
    [
      'a file as parent',
      /parent dir missing: entry "big-text.bin\/x"/,
      (j) => insert(j, plain('big-text.bin/x')),
    ],
    ['no root', /root/, (j) => j.entries.shift()],
    [
      'a dangling hardlink',
      /hardlink target "nope" missing/,
      (j) => insert(j, plain('dir0/h', { type: 'hardlink', linkTarget: 'nope' })),
    ],
    [
      'a hardlink to a dir',
      /hardlink target "dir1" missing or a dir/,
      (j) => insert(j, plain('dir0/h', { type: 'hardlink', linkTarget: 'dir1' })),
    ],
    [
      'devMajor on a file',
      /devMajor\/devMinor only/,
      (j) => Object.assign(file(j), { devMajor: 1, devMinor: 3 }),
    ],
    [
      'a char device without numbers',
      /devMajor\/devMinor only and always/,
      (j) => insert(j, plain('dir0/c', { type: 'char' })),
    ],
    ['linkTarget on a file', /linkTarget only and always on links/, (j) => (file(j)['linkTarget'] = 'x')],
    ['dataOffset on a dir', /dataOffset only on files/, (j) => (entry(j, 'dir0')['dataOffset'] = 0)],
    ['opaque on a file', /opaque only on dirs/, (j) => (file(j)['opaque'] = true)],
    ['a size on a dir', /size only on files/, (j) => (entry(j, 'dir0')['size'] = 10)],
    ['mode beyond 0o7777', /mode 4096 not within 0o7777/, (j) => (file(j)['mode'] = 0o10000)],
    ['a uid beyond 32 bits', /uid\/gid out of range/, (j) => (file(j)['uid'] = 2 ** 32)],
    ['a file without dataOffset', /file without dataOffset/, (j) => delete file(j)['dataOffset']],
    [
      'file bytes outside the layer',
      /outside the \d+-byte layer: entry "big-text.bin"/,
      (j) => (file(j)['dataOffset'] = j.uncompressedSize),
    ],
    [
      'file bytes not covered by chunks',
      /not covered by chunks: entry "big-text.bin"/,
      (j) => (file(j)['dataOffset'] = (j.chunks[0]![1] as number) - 1),
    ],
    [
      'too many xattrs',
      /xattr cap: 129 xattrs/,
      (j) =>
        (file(j)['xattrs'] = Object.fromEntries(
          Array.from({ length: 129 }, (_, i) => [`user.x${i}`, 'AA==']),
        )),
    ],
    [
      'an xattr value over 64 KiB',
      /value above 65536 bytes/,
      (j) => (file(j)['xattrs'] = { 'user.big': Buffer.alloc(70_000).toString('base64') }),
    ],
    ['an xattr value not base64', /not base64/, (j) => (file(j)['xattrs'] = { 'user.x': '!!' })],
    [
      'overlapping chunks',
      /chunks not sorted and disjoint: chunk 1/,
      (j) => (j.chunks[1]![1] = j.chunks[0]![1]),
    ],
    ['an empty chunk', /empty chunk: chunk 0/, (j) => (j.chunks[0]![2] = 0)],
    ['a chunk over 64 MiB', /above 67108864: chunk 0/, (j) => (j.chunks[0]![2] = 65 << 20)],
    [
      'a chunk past the layer end',
      /chunk ends past the \d+-byte layer/,
      (j) => (j.chunks[j.chunks.length - 1]![2] = j.uncompressedSize),
    ],
    [
      'a span past the blob',
      /empty or outside the \d+-byte blob: chunk 0/,
      (j) => (j.chunks[0]![4] = j.compressedSize + 1),
    ],
    [
      'a span as large as the blob',
      /span of \d+ bytes too large for/,
      (j) => {
        j.compressedSize = 64 << 20;
        j.chunks[0]![4] = j.compressedSize;
      },
    ],
    [
      'a skip not leading to the chunk',
      /skip \d+ does not lead from checkpoint/,
      (j) => (j.chunks[1]![6] = 7),
    ],
    ['a span not at its checkpoint', /span does not start at checkpoint/, (j) => (j.chunks[1]![3] = 1)],
    ['a short window', /window of 100 bytes, expected 32768/, (_j, w) => (w[1] = new Uint8Array(100))],
    ['a shared window', /window index 0 is not the checkpoint's own/, (j) => (j.checkpoints[1]![3] = 0)],
    [
      'unsorted checkpoints',
      /checkpoints not sorted: checkpoint 2/,
      (j) => (j.checkpoints[2]![2] = j.checkpoints[1]![2]),
    ],
    ['codec against format', /codec identity does not match format gzip/, (j) => (j.codec = 'identity')],
    [
      'format against media type',
      /format gzip does not match media type .*zstd/,
      (j) => (j.mediaType = ZSTD),
    ],
    ['a foreign media type', /is not a layer media type/, (j) => (j.mediaType = 'text/plain')],
    ['a 600-byte build tool', /label cap/, (j) => ((j['build'] as Obj)['tool'] = 't'.repeat(600))],
    [
      'checkpoints on a tar index',
      /checkpoints or windows on a identity index/,
      (j) => {
        j.mediaType = TAR;
        j.format = 'tar';
        j.codec = 'identity';
        j.uncompressedSize = j.compressedSize;
      },
    ],
  ];

  it.each(cases)('%s', (_name, message, edit) => {
    let err: unknown;
    try {
      deserializeIndex(forge(edit));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FormatError);
    expect((err as Error).message).toMatch(message);
  });

  it('an identity span that is not the chunk itself', async () => {
    const tar = await build(layer.tar, TAR);
    expect(() =>
      deserializeIndex(forge((j) => (j.chunks[0]![4] = (j.chunks[0]![4] as number) + 1), tar)),
    ).toThrow(/identity span is not the chunk itself: chunk 0/);
  });

  it('entry and chunk caps, before looking at any entry', () => {
    expect(() => validateIndex({ ...gz, entries: new Array(1_000_001) })).toThrow(
      /entry cap: 1000001 entries/,
    );
    expect(() => validateIndex({ ...gz, chunks: new Array(1_000_001) })).toThrow(/chunk cap: 1000001 chunks/);
  });

  it('a header claiming more than 128 MiB is refused before inflating', () => {
    const good = serializeIndex(gz);
    const body = Buffer.from(good.subarray(0, good.length - 32));
    body.writeUInt32BE((128 << 20) + 1, 12);
    const forged = Buffer.concat([body, createHash('sha256').update(body).digest()]);
    expect(() => deserializeIndex(forged)).toThrow(/bad header length/);
  });
});

describe('random forgeries', () => {
  const json = indexToJson(gz);
  const windows = Buffer.concat(gz.windows);
  const paths = [
    '',
    '.',
    '..',
    'a/../b',
    '/x',
    'x/',
    'a//b',
    'dir0',
    'big-text.bin',
    'dir5/hard-big',
    'a\0b',
  ];
  const value = fc.oneof(
    fc.integer({ min: -2, max: 2 ** 31 }),
    fc.constantFrom(0, 1, 32768, 65 << 20, 2 ** 53, 0o10000, -1),
    fc.constantFrom(...paths),
    fc.constantFrom('file', 'dir', 'hardlink', 'char', 'whiteout', true, null),
    fc.string({ maxLength: 12 }),
  );

  it('are refused with a FerryError or still give a servable tree', () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('entries', 'chunks', 'checkpoints'), fc.nat(), fc.nat(), value), {
          minLength: 1,
          maxLength: 3,
        }),
        (edits) => {
          const j = structuredClone(json) as unknown as Json;
          for (const [table, row, col, v] of edits) {
            const rows = j[table] as Array<Row | Obj>;
            const r = rows[row % rows.length]!;
            if (Array.isArray(r)) r[col % r.length] = v;
            else {
              const keys = [...Object.keys(r), 'linkTarget', 'devMajor', 'dataOffset', 'xattrs', 'opaque'];
              r[keys[col % keys.length]!] = v;
            }
          }
          let index: LayerIndex;
          try {
            index = deserializeIndex(seal(j, windows));
          } catch (e) {
            expect(e).toBeInstanceOf(FerryError);
            return;
          }
          accepted++;
          // Accepted: still within every rule, and the layer tree and chunk lookups hold up.
          validateIndex(index);
          LayerTree.fromIndex(index);
          for (const e of index.entries) {
            if (e.type !== 'file' || e.size === 0) continue;
            const covering = chunksCovering(index.chunks, e.dataOffset!, e.size);
            expect(covering.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 600 },
    );
    expect(accepted).toBeGreaterThan(0);
  });
});
