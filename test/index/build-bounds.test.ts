// Index building against hostile layers, built in-test: memory stays bounded (a child process streams the layer
// with a 64 MiB JS heap and reports its peak RSS), and what no index should hold ends in a FormatError naming it.
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FerryError, FormatError } from '../../src/errors.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { validateIndex } from '../../src/index/validate-index.js';
import { encodeTarHeader } from '../helpers/estargz-writer-tar.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { END_OF_ARCHIVE, paxGlobalHeader, paxHeader, paxRecord, tarFile } from './build-bounds-tar.js';

const MiB = 1 << 20;
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const CHILD = 'test/index/fixtures/build-bounds-child.ts';

interface ChildResult {
  entries?: number;
  error?: string;
  maxRssBytes: number;
}

/** A child builds a hostile layer in a 64 MiB heap: seconds alone, much longer on a loaded 2-core machine. */
const CHILD_TIMEOUT_MS = 150_000;

function inChild(kind: string): ChildResult {
  const out = execFileSync(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', CHILD, kind], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
  console.log(
    `[bounds] ${kind}: peak RSS ${Math.round(r.maxRssBytes / MiB)} MiB, ${r.error ?? `${r.entries} entries`}`,
  );
  return r;
}

async function build(...parts: Buffer[]): Promise<LayerIndex> {
  const blob = new MemoryBlobReader(Buffer.concat([...parts, END_OF_ARCHIVE]));
  return buildIndexFromStream({ layerDigest: blob.digest, mediaType: TAR, blob });
}

async function refusal(...parts: Buffer[]): Promise<FerryError> {
  const err = await build(...parts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FormatError);
  return err as FerryError;
}

describe('index building holds a bounded amount of memory', () => {
  it(
    'a small file followed by a 400 MiB entry that is not a file: its bytes are never held',
    () => {
      const r = inChild('huge-non-file');
      expect(r.error).toBeUndefined();
      expect(r.entries).toBe(3);
      expect(r.maxRssBytes).toBeLessThan(160 * MiB); // held the 400 MiB before
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    'a gzip bomb (2 GiB of zeros in 2 MiB) ends in a clear FormatError, not 2 GiB of output',
    () => {
      const r = inChild('gzip-bomb');
      expect(r.error).toMatch(/^FORMAT: .*more than 256:1 \(a decompression bomb\?\)/);
      expect(r.maxRssBytes).toBeLessThan(256 * MiB);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    'a global PAX header with 100 KiB of xattrs over 4000 files: refused at the header cap, never copied',
    () => {
      const r = inChild('global-pax-xattrs');
      expect(r.error).toMatch(/^FORMAT: .*the index would need over 134217728 bytes of header/);
      expect(r.maxRssBytes).toBeLessThan(160 * MiB);
    },
    CHILD_TIMEOUT_MS,
  );

  it(
    'a zstd layer of a million 64-byte frames: frame starts are not all kept',
    () => {
      const r = inChild('zstd-tiny-frames');
      expect(r.error).toBeUndefined();
      expect(r.entries).toBe(2);
      expect(r.maxRssBytes).toBeLessThan(320 * MiB); // ran out of its 64 MiB heap before
    },
    CHILD_TIMEOUT_MS,
  );

  it('a header claiming a 32 TiB file is not planned chunk by chunk up front', async () => {
    const header = encodeTarHeader({ name: 'huge', typeflag: '0', size: 0 });
    const pax = paxHeader('x', [paxRecord('size', Buffer.from(String(2 ** 45)))]);
    const started = performance.now();
    const blob = new MemoryBlobReader(
      Buffer.concat([tarFile('a', Buffer.from('a')), pax, header, Buffer.alloc(MiB)]),
    );
    await expect(buildIndexFromStream({ layerDigest: blob.digest, mediaType: TAR, blob })).rejects.toThrow(
      /tar stream truncated/,
    );
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe('PAX and xattr caps', () => {
  it('a global PAX header is shared by reference by the entries that follow it', async () => {
    const files = Array.from({ length: 50 }, (_, i) => tarFile(`f${i}`, Buffer.from(`${i}`)));
    const index = await build(
      paxGlobalHeader({ 'user.a': Buffer.from('1'), 'user.b': Buffer.from('2') }),
      ...files,
    );
    const xattrs = index.entries.filter((e) => e.type === 'file').map((e) => e.xattrs);
    expect(xattrs).toHaveLength(50);
    expect(xattrs[0]).toEqual({ 'user.a': 'MQ==', 'user.b': 'Mg==' });
    expect(new Set(xattrs).size).toBe(1);
    validateIndex(index);
  });

  it('more than 128 xattrs on one entry', async () => {
    const xattrs = Object.fromEntries(
      Array.from({ length: 129 }, (_, i) => [`user.x${i}`, Buffer.from('v')]),
    );
    const err = await refusal(tarFile('many', Buffer.from('x'), xattrs));
    expect(err.message).toMatch(/129 xattrs for the entry at offset \d+, above 128/);
  });

  it('an xattr value over 64 KiB', async () => {
    const err = await refusal(tarFile('big', Buffer.from('x'), { 'user.big': Buffer.alloc(70_000, 1) }));
    expect(err.message).toMatch(/xattr "user.big" of 70000 bytes at offset \d+, above 65536/);
  });

  it('one PAX record over 96 KiB', async () => {
    const err = await refusal(tarFile('rec', Buffer.from('x'), { 'user.big': Buffer.alloc(100_000, 1) }));
    expect(err.message).toMatch(/PAX record of 100\d{3} bytes at offset 0, above 98304/);
  });

  it('one PAX header over 1 MiB', async () => {
    const xattrs = Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [`user.x${i}`, Buffer.alloc(60_000)]),
    );
    const err = await refusal(tarFile('hdr', Buffer.from('x'), xattrs));
    expect(err.message).toMatch(/extension header of 12\d{5} bytes at offset 0/);
  });
});

describe('names the validator would refuse never leave the builder', () => {
  it('a whiteout naming .. or . is refused', async () => {
    for (const name of ['d/.wh...', 'd/.wh..']) {
      const err = await refusal(tarFile('d/x', Buffer.from('x')), tarFile(name, Buffer.alloc(0)));
      expect(err.message).toMatch(/whiteout "d\/\.wh\.\.\.?" names \.\.?/);
    }
  });

  it('what the loader would refuse is refused by the builder: a 256-byte name, gzip bytes labelled tar', async () => {
    const err = await refusal(tarFile(`d/${'n'.repeat(256)}`, Buffer.from('x')));
    expect(err.message).toMatch(/path component longer than 255 bytes\): entry "d\/n+"/);
    const blob = new MemoryBlobReader(
      gzipSync(Buffer.concat([tarFile('a', Buffer.from('a')), END_OF_ARCHIVE])),
    );
    await expect(buildIndexFromStream({ layerDigest: blob.digest, mediaType: TAR, blob })).rejects.toThrow(
      /format gzip does not match media type application\/vnd.oci.image.layer.v1.tar$/,
    );
  });

  it('a hardlink to a missing path or a dir is left out; one to a file stays', async () => {
    const index = await build(
      tarFile('d/f', Buffer.from('x')),
      encodeTarHeader({ name: 'd/to-missing', typeflag: '1', size: 0, linkname: 'nope' }),
      encodeTarHeader({ name: 'd/to-dir', typeflag: '1', size: 0, linkname: 'd' }),
      encodeTarHeader({ name: 'd/to-file', typeflag: '1', size: 0, linkname: 'd/f' }),
    );
    expect(index.entries.map((e) => e.path)).toEqual(['', 'd', 'd/f', 'd/to-file']);
    expect(index.entries[3]).toMatchObject({ type: 'hardlink', linkTarget: 'd/f', size: 1 });
    validateIndex(index);
  });
});
