// Property tests for the tar parser over structured archives: valid checksums with random type flags, octal
// and base-256 size fields up to 2^62, PAX records (size/path/mtime/uid/xattrs) and GNU long names with
// random lengths, fed in random piece sizes — a value or a FerryError, bounded time and memory.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors.js';
import { TarParser, type TarEntry } from '../../src/image/tar.js';
import { guarded, reportCounts } from './guard.js';

function header(o: {
  name: string;
  type: string;
  size: Uint8Array;
  mode?: string;
  linkName?: string;
}): Buffer {
  const h = Buffer.alloc(512);
  h.write(o.name.slice(0, 100), 0, 'utf8');
  h.write(o.mode ?? '0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  Buffer.from(o.size).copy(h, 124, 0, 12);
  h.write('14000000000\0', 136, 'latin1');
  h.write(o.type, 156, 'latin1');
  h.write((o.linkName ?? '').slice(0, 100), 157, 'utf8');
  h.write('ustar\u000000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

const octal = (n: number): Uint8Array =>
  Buffer.from(`${n.toString(8).padStart(11, '0').slice(-11)}\0`, 'latin1');
function base256(n: bigint): Uint8Array {
  const b = Buffer.alloc(12);
  let v = n;
  for (let i = 11; i >= 1; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  b[0] = 0x80;
  return b;
}

const sizeField = fc.oneof(
  fc.nat(4096).map(octal),
  fc.constantFrom(2 ** 33 - 1, 2 ** 20).map(octal),
  fc.bigInt({ min: 0n, max: 2n ** 62n }).map(base256),
  fc.constantFrom(2n ** 50n, 2n ** 53n, 2n ** 53n + 1n).map(base256),
  fc.uint8Array({ minLength: 12, maxLength: 12 }),
);

const paxRecord = fc.oneof(
  fc.tuple(
    fc.constant('size'),
    fc.oneof(fc.nat().map(String), fc.constantFrom('1125899906842624', '99999999999999999', '-1', 'x')),
  ),
  fc.tuple(fc.constant('path'), fc.string({ maxLength: 300 })),
  fc.tuple(fc.constant('linkpath'), fc.string({ maxLength: 50 })),
  fc.tuple(fc.constant('mtime'), fc.oneof(fc.double().map(String), fc.string({ maxLength: 20 }))),
  fc.tuple(fc.constantFrom('uid', 'gid'), fc.oneof(fc.nat().map(String), fc.string({ maxLength: 20 }))),
  fc.tuple(
    fc.string({ minLength: 1, maxLength: 30 }).map((k) => `SCHILY.xattr.${k}`),
    fc.string({ maxLength: 40 }),
  ),
  fc.tuple(
    fc.string({ minLength: 1, maxLength: 30 }).map((k) => `LIBARCHIVE.xattr.${k}`),
    fc.string({ maxLength: 40 }),
  ),
);

function paxBody(records: Array<[string, string]>, lie: number): Buffer {
  return Buffer.concat(
    records.map(([k, v]) => {
      const rec = ` ${k}=${v}\n`;
      const n = Buffer.byteLength(rec);
      let len = n + String(n).length;
      if (String(len).length !== String(n).length) len = n + String(len).length; // the length counts itself
      return Buffer.from(`${len + lie}${rec}`);
    }),
  );
}

const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

const member = fc.oneof(
  fc.record({
    kind: fc.constant('plain' as const),
    name: fc.string({ maxLength: 120 }),
    type: fc.constantFrom('0', '\0', '1', '2', '3', '4', '5', '6', '7', 'S', 'V', 'Z'),
    size: sizeField,
    data: fc.uint8Array({ maxLength: 1500 }),
  }),
  fc.record({
    kind: fc.constant('pax' as const),
    type: fc.constantFrom('x', 'g'),
    records: fc.array(paxRecord, { maxLength: 5 }),
    lie: fc.constantFrom(0, 0, 0, 1, -1, 1000),
    declared: fc.option(sizeField, { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant('long' as const),
    type: fc.constantFrom('L', 'K'),
    body: fc.uint8Array({ maxLength: 800 }),
    declared: fc.option(sizeField, { nil: undefined }),
  }),
);

function encode(m: MemberValue): Buffer {
  if (m.kind === 'plain')
    return Buffer.concat([header({ name: m.name, type: m.type, size: m.size }), pad(Buffer.from(m.data))]);
  const body = m.kind === 'pax' ? paxBody(m.records, m.lie) : Buffer.from(m.body);
  return Buffer.concat([
    header({ name: '././@Ext', type: m.type, size: m.declared ?? octal(body.length) }),
    pad(body),
  ]);
}
type MemberValue = typeof member extends fc.Arbitrary<infer T> ? T : never;

let entries = 0;
let errors = 0;

afterAll(() => reportCounts('tar-structured'));

describe('fuzz: tar parser over structured archives', () => {
  it('random members, sizes up to 2^62, random piece sizes', () => {
    fc.assert(
      fc.property(
        fc.array(member, { maxLength: 8 }),
        fc.integer({ min: 1, max: 1024 }),
        fc.boolean(),
        (members, piece, terminate) => {
          const stream = Buffer.concat([
            ...members.map(encode),
            terminate ? Buffer.alloc(1024) : Buffer.alloc(0),
          ]);
          const seen: TarEntry[] = [];
          const r = guarded('tar', () => {
            const p = new TarParser({
              onEntry: (e) => seen.push(e),
              onData: () => undefined,
              maxMetaBytes: 1 << 20,
            });
            for (let i = 0; i < stream.length; i += piece) p.push(stream.subarray(i, i + piece));
            p.end();
            return p.offset;
          });
          if (r instanceof FerryError) errors++;
          else expect(r).toBe(stream.length);
          for (const e of seen) {
            expect(Number.isSafeInteger(e.size) && e.size >= 0).toBe(true);
            expect(e.dataOffset).toBe(e.headerOffset + 512);
            expect(e.name.startsWith('/')).toBe(false);
            expect(e.name.split('/')).not.toContain('..');
          }
          entries += seen.length;
        },
      ),
      { numRuns: 3000 },
    );
    expect(entries).toBeGreaterThan(100); // the generator reaches the entry path, not just checksum errors
    expect(errors).toBeGreaterThan(10);
  });
});
