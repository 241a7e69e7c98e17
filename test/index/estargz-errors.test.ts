// Failure modes of the eStargz reader: digest mismatches, foreign blobs, corrupt footers and TOCs, fuzzed input.
// Every failure must be a typed FerryError naming the layer; nothing else may escape.
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FerryError, FormatError, IntegrityError, isFerryError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { buildEstargzIndex, isEstargz } from '../../src/index/estargz.js';
import { encodeEstargzFooter } from '../../src/index/estargz-footer.js';
import { writeEstargz, type EstargzInputEntry } from '../helpers/estargz-writer.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { MEDIA_TYPE } from './estargz-test-utils.js';

const ENTRIES: EstargzInputEntry[] = [
  { path: 'a', type: 'dir' },
  { path: 'a/f', type: 'file', content: Buffer.from('hello, chunks'.repeat(100)) },
  { path: 'a/l', type: 'hardlink', linkTarget: 'a/f' },
];

function build(blob: Buffer, tocDigest?: string): Promise<unknown> {
  const reader = new MemoryBlobReader(blob);
  return buildEstargzIndex({
    layerDigest: reader.digest,
    mediaType: MEDIA_TYPE,
    blob: reader,
    ...(tocDigest ? { tocDigest: tocDigest as ReturnType<typeof sha256> } : {}),
  });
}

/** Writes ENTRIES with the TOC object edited by `edit`. */
type RawToc = { version: unknown; entries: Record<string, unknown>[] };
function withToc(edit: (toc: RawToc) => unknown, entries = ENTRIES): Buffer {
  return writeEstargz(entries, {
    chunkSizeBytes: 512,
    tocTransform: (json) => Buffer.from(JSON.stringify(edit(JSON.parse(json.toString()) as RawToc))),
  }).blob;
}

async function expectFormatError(p: Promise<unknown>, match?: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FormatError);
  expect((err as Error).message).toMatch(/^layer sha256:[0-9a-f]{64}: /);
  if (match) expect((err as Error).message).toMatch(match);
}

describe('eStargz reader failures', () => {
  it('rejects a TOC whose digest differs from the annotation, naming the layer', async () => {
    const w = writeEstargz(ENTRIES);
    const err = await build(w.blob, sha256('other')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(new MemoryBlobReader(w.blob).digest);
    expect((err as Error).message).toContain(w.tocDigest);
    await expect(build(w.blob, w.tocDigest)).resolves.toBeDefined();
  });

  it('says a plain gzip layer and tiny blobs are not eStargz', async () => {
    const plain = gzipSync(Buffer.alloc(10_240));
    expect(await isEstargz(new MemoryBlobReader(plain))).toBe(false);
    expect(await isEstargz(new MemoryBlobReader(Buffer.alloc(0)))).toBe(false);
    expect(await isEstargz(new MemoryBlobReader(Buffer.from('tiny')))).toBe(false);
    await expectFormatError(build(plain), /not an eStargz blob/);
  });

  it('rejects truncated blobs and garbage footers', async () => {
    const { blob, tocOffset } = writeEstargz(ENTRIES);
    const footer = blob.subarray(blob.length - 51);
    await expectFormatError(build(blob.subarray(0, blob.length - 7)));
    // The TOC member cut short but the footer intact.
    await expectFormatError(
      build(Buffer.concat([blob.subarray(0, tocOffset + 20), encodeEstargzFooter(tocOffset)])),
    );
    // The footer pointing at a member that is not the TOC.
    await expectFormatError(
      build(Buffer.concat([blob.subarray(0, blob.length - 51), encodeEstargzFooter(0)])),
      /not stargz\.index\.json/,
    );
    const bad = Buffer.from(footer);
    bad.write('zz', 16, 'latin1');
    expect(
      await isEstargz(new MemoryBlobReader(Buffer.concat([blob.subarray(0, blob.length - 51), bad]))),
    ).toBe(false);
    // An offset past the end of the blob.
    const past = Buffer.concat([blob.subarray(0, blob.length - 51), encodeEstargzFooter(blob.length)]);
    await expectFormatError(build(past), /not an eStargz blob/);
  });

  it('rejects TOC JSON with bad types or shapes', async () => {
    const cases: Array<[string, (t: { version: unknown; entries: Record<string, unknown>[] }) => unknown]> = [
      ['version', (t) => ({ ...t, version: 2 })],
      ['entries', (t) => ({ ...t, entries: 'nope' })],
      ['entries.0.name', (t) => ((t.entries[0]!.name = 7), t)],
      ['entries.1.size', (t) => ((t.entries[1]!.size = '12'), t)],
      ['entries.1.mode', (t) => ((t.entries[1]!.mode = -1), t)],
      ['entries.1.offset', (t) => ((t.entries[1]!.offset = 1.5), t)],
      ['entries.0.type', (t) => ((t.entries[0]!.type = 'socket'), t)],
      ['entries.1.xattrs', (t) => ((t.entries[1]!.xattrs = { 'user.a': '!!not base64!!' }), t)],
      ['entries.1.chunkDigest', (t) => ((t.entries[1]!.chunkDigest = 'md5:abc'), t)],
      ['(root)', () => null],
    ];
    for (const [where, edit] of cases) {
      await expectFormatError(
        build(withToc(edit)),
        new RegExp(`invalid eStargz TOC at ${where.replace(/[().]/g, '\\$&')}`),
      );
    }
    const notJson = writeEstargz(ENTRIES, { tocTransform: () => Buffer.from('{"version":1,') }).blob;
    await expectFormatError(build(notJson), /not valid JSON/);
  });

  it('refuses legacy stargz without chunk digests: Ferry never serves unverified bytes', async () => {
    const legacy = withToc((t) => {
      for (const e of t.entries) delete e.chunkDigest;
      return t;
    });
    await expectFormatError(build(legacy), /no chunk digests; cannot verify/);
  });

  it('rejects inconsistent chunk lists, escaping names and dangling hardlinks', async () => {
    const chunkIdx = (t: { entries: Record<string, unknown>[] }): number =>
      t.entries.findIndex((e) => e.type === 'chunk');
    await expectFormatError(
      build(withToc((t) => ((t.entries[chunkIdx(t)]!.chunkOffset = 3), t))),
      /expected 512/,
    );
    await expectFormatError(
      build(withToc((t) => (t.entries.splice(t.entries.map((e) => e.type).lastIndexOf('chunk'), 1), t))),
      /has chunks for/,
    );
    await expectFormatError(
      build(withToc((t) => (t.entries.unshift({ name: 'x', type: 'chunk', offset: 1 }), t))),
      /does not follow/,
    );
    await expectFormatError(
      build(withToc((t) => ((t.entries[1]!.offset = 10 ** 9), t))),
      /bad compressed span/,
    );
    await expectFormatError(
      build(withToc((t) => ((t.entries[0]!.name = 'a/../../etc'), t))),
      /escapes the layer root/,
    );
    await expectFormatError(
      build(withToc((t) => t, [{ path: 'h', type: 'hardlink', linkTarget: 'missing' }])),
      /not found/,
    );
    await expectFormatError(
      build(
        withToc(
          (t) => t,
          [
            { path: 'f', type: 'file' },
            { path: 'f/child', type: 'file' },
          ],
        ),
      ),
      /is a file but has children/,
    );
  });

  it('stops on an aborted signal', async () => {
    const reader = new MemoryBlobReader(writeEstargz(ENTRIES).blob);
    const ac = new AbortController();
    ac.abort();
    const err = await buildEstargzIndex({
      layerDigest: reader.digest,
      mediaType: MEDIA_TYPE,
      blob: reader,
      signal: ac.signal,
    }).catch((e: unknown) => e);
    expect(isFerryError(err, 'ABORTED')).toBe(true);
  });
});

describe('eStargz reader under fuzzing: a value or a FerryError, never another exception', () => {
  const outcome = async (blob: Buffer): Promise<void> => {
    const reader = new MemoryBlobReader(blob);
    const is = await isEstargz(reader);
    expect(typeof is).toBe('boolean');
    try {
      await build(blob);
    } catch (e) {
      if (!(e instanceof FerryError)) throw e;
    }
  };

  it('random bytes as the footer and the TOC member', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ minLength: 51, maxLength: 51 }),
        async (body, foot) => {
          await outcome(Buffer.concat([body, foot]));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random bytes behind a valid footer', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 400 }),
        fc.nat(),
        fc.boolean(),
        async (body, at, gz) => {
          const data = gz ? gzipSync(body) : Buffer.from(body);
          await outcome(Buffer.concat([data, encodeEstargzFooter(at % data.length)]));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random JSON and random entry shapes as the TOC', async () => {
    const value = fc.oneof(
      fc.jsonValue(),
      fc.constantFrom(0, -1, 2 ** 60, '', 'reg', 'chunk', 'sha256:' + '0'.repeat(64)),
    );
    const entry = fc.dictionary(
      fc.constantFrom(
        'name',
        'type',
        'size',
        'offset',
        'innerOffset',
        'chunkOffset',
        'chunkSize',
        'chunkDigest',
        'linkName',
        'mode',
        'xattrs',
        'modtime',
      ),
      value,
    );
    const toc = fc.oneof(
      fc.jsonValue(),
      fc.record({ version: fc.constantFrom(1, 2), entries: fc.array(entry, { maxLength: 8 }) }),
    );
    await fc.assert(
      fc.asyncProperty(toc, async (t) => {
        await outcome(
          writeEstargz(ENTRIES, { tocTransform: () => Buffer.from(JSON.stringify(t) ?? 'null') }).blob,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('structurally valid TOCs with mutated payload entries', async () => {
    const field = fc.constantFrom('offset', 'innerOffset', 'chunkOffset', 'chunkSize', 'size');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(5), field, fc.nat(5000)), { maxLength: 4 }),
        async (edits) => {
          const blob = withToc((t) => {
            for (const [i, f, v] of edits) if (t.entries[i]) t.entries[i][f] = v;
            return t;
          });
          await outcome(blob);
        },
      ),
      { numRuns: 200 },
    );
  });
});
