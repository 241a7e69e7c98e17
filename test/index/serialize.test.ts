// Serialized layer indexes round-trip exactly; any damage is a FormatError; the store treats damage as a miss.
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { digestHex, sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { IndexStore } from '../../src/index/index-store.js';
import { deserializeIndex, serializeIndex } from '../../src/index/serialize.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from './layer-fixture.js';

const layer = makeLayer({ smallFiles: 300, seed: 7 });
const blob = new MemoryBlobReader(layer.gz);
const index = await buildIndexFromStream({
  layerDigest: blob.digest,
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  blob,
  spanBytes: 256 * 1024,
});

/** Deep equality, with windows compared as bytes (vitest's typed-array walk is slow). */
function expectSameIndex(got: LayerIndex, want: LayerIndex): void {
  expect({ ...got, windows: [] }).toEqual({ ...want, windows: [] });
  expect(got.windows.length).toBe(want.windows.length);
  got.windows.forEach((w, i) => expect(Buffer.from(w).equals(want.windows[i]!)).toBe(true));
}

describe('serializeIndex / deserializeIndex', () => {
  it('round-trips a built gzip index exactly, compactly', () => {
    const buf = serializeIndex(index);
    expectSameIndex(deserializeIndex(buf, index.layerDigest), index);
    const windowBytes = index.windows.reduce((s, w) => s + w.length, 0);
    expect(index.windows.length).toBeGreaterThan(3);
    expect(buf.length - windowBytes).toBeLessThan(JSON.stringify(index.entries).length / 3);
  });

  it('rejects every kind of damage with FormatError', () => {
    const buf = serializeIndex(index);
    for (const at of [0, 9, 14, 100, Math.floor(buf.length / 2), buf.length - 1]) {
      const bad = Buffer.from(buf);
      bad[at] = bad[at]! ^ 1;
      expect(() => deserializeIndex(bad)).toThrow(FormatError);
    }
    for (const len of [0, 10, 47, buf.length - 1])
      expect(() => deserializeIndex(buf.subarray(0, len))).toThrow(FormatError);
    expect(() => deserializeIndex(buf, sha256('another layer'))).toThrow(/index is for/);
    expect(() => deserializeIndex(Buffer.concat([buf, Buffer.alloc(1)]))).toThrow(FormatError);
  });
});

describe('windows apart (file version 2)', () => {
  it('round-trips an index whose windows live in a windows blob, and refuses a mix of both', () => {
    const ix = index;
    const refs = ix.windows.map((w, i) => ({
      offset: i * 10,
      length: 10,
      digest: sha256(w),
      size: w.length,
    }));
    const lazy: LayerIndex = {
      ...ix,
      windows: [],
      windowsBlob: { digest: sha256('w'), size: refs.length * 10, refs },
    };
    const back = deserializeIndex(serializeIndex(lazy), ix.layerDigest);
    expect(back.windows).toEqual([]);
    expect(back.windowsBlob).toEqual(lazy.windowsBlob);
    expect(back.checkpoints).toEqual(ix.checkpoints);
    expect(serializeIndex(lazy).length).toBeLessThan(serializeIndex(ix).length / 2);
    expect(() => deserializeIndex(serializeIndex({ ...lazy, windows: ix.windows }))).toThrow(FormatError);
  });
});

describe('IndexStore', () => {
  const built = `built-${'ab'.repeat(32)}-${'12'.repeat(8)}`;
  const toc = `toc-${'cd'.repeat(32)}`;
  it('puts, gets, misses, and drops a corrupt file; an index is found only under the root it was stored with', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ferry-idx-')), 'indexes');
    const store = new IndexStore({ dir });
    expect(await store.get(index.layerDigest, built)).toBeUndefined();
    await store.put(index, built);
    expectSameIndex((await store.get(index.layerDigest, built))!, index);
    expect(await store.get(index.layerDigest, toc)).toBeUndefined();
    const name = `${digestHex(index.layerDigest)}.${built}.idx`;
    expect(readdirSync(dir)).toEqual([name]);
    expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const file = join(dir, name);
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    writeFileSync(file, bytes);
    expect(await store.get(index.layerDigest, built)).toBeUndefined();
    expect(readdirSync(dir)).toEqual([]);
    const ac = new AbortController();
    ac.abort();
    await expect(store.put(index, built, ac.signal)).rejects.toMatchObject({ code: 'ABORTED' });
    expect(readdirSync(dir)).toEqual([]);
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  it('never reads a file from before trust roots, and refuses keys that are not roots', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ferry-idx-')), 'indexes');
    const store = new IndexStore({ dir });
    await store.put(index, built);
    renameSync(
      join(dir, `${digestHex(index.layerDigest)}.${built}.idx`),
      join(dir, `${digestHex(index.layerDigest)}.idx`),
    );
    expect(await store.get(index.layerDigest, built)).toBeUndefined();
    await expect(store.get(index.layerDigest, '../x')).rejects.toMatchObject({ code: 'FORMAT' });
    // A built key without its build tag (stored before the tag existed) is no key.
    await expect(store.get(index.layerDigest, `built-${'ab'.repeat(32)}`)).rejects.toMatchObject({
      code: 'FORMAT',
    });
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  it('records the root key a mount serves, per mountpoint and layer', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ferry-idx-')), 'indexes');
    const store = new IndexStore({ dir });
    expect(await store.mountKey('/m/1', index.layerDigest)).toBeUndefined();
    await store.setMountKey('/m/1', index.layerDigest, { key: toc, audited: false });
    expect(await store.mountKey('/m/1', index.layerDigest)).toEqual({ key: toc, audited: false });
    expect(await store.mountKey('/m/2', index.layerDigest)).toBeUndefined();
    expect(await store.mountKey('/m/1', sha256('other'))).toBeUndefined();
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });
});
