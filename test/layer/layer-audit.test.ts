// The audit of a lazily served layer against its verified blob: a faithful index passes (Ferry's own and an
// eStargz TOC of the same files), and every kind of lie an index can tell is an IntegrityError naming the path.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import type { Entry, LayerIndex } from '../../src/image/layer-index.js';
import { buildEstargzIndex } from '../../src/index/estargz.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { auditLayer } from '../../src/layer/layer-audit.js';
import { fetchChunkFromOrigin } from '../../src/source/origin.js';
import { OriginSource } from '../../src/source/origin-source.js';
import { estargzFromLayer, gzipLayer, makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';

let dir: string;
let layer: CorpusLayer;
let gz: Buffer;
let truth: LayerIndex;

const build = (blob: Buffer): Promise<LayerIndex> =>
  buildIndexFromStream({
    layerDigest: sha256(blob),
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    blob: new MemoryBlobReader(blob),
    chunkSizeBytes: 256 << 10,
  });
const sourceOver = (blob: Buffer) =>
  new OriginSource({ blobFor: () => new MemoryBlobReader(blob), fetch: fetchChunkFromOrigin });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-audit-'));
  layer = makeCorpus(dir, { smallFiles: 200, bigFileBytes: 1 << 20 })[0]!;
  gz = gzipLayer(layer.tar);
  truth = await build(gz);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const withEntry = (ix: LayerIndex, path: string, f: (e: Entry) => Entry): LayerIndex => ({
  ...ix,
  entries: ix.entries.map((e) => (e.path === path ? f(e) : e)),
});

describe('auditLayer', () => {
  it('passes an index that is the layer, whatever its chunking', async () => {
    const other = await buildIndexFromStream({
      layerDigest: sha256(gz),
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob: new MemoryBlobReader(gz),
      chunkSizeBytes: 1 << 20,
    });
    await expect(auditLayer({ served: other, truth, source: sourceOver(gz) })).resolves.toBeUndefined();
  });

  it('passes an eStargz TOC of the same files against the tar that blob holds', async () => {
    const esgz = await estargzFromLayer(layer);
    const served = await buildEstargzIndex({
      layerDigest: sha256(esgz.blob),
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob: new MemoryBlobReader(esgz.blob),
      tocDigest: esgz.tocDigest,
    });
    const blobTruth = await build(esgz.blob);
    await expect(
      auditLayer({ served, truth: blobTruth, source: sourceOver(esgz.blob) }),
    ).resolves.toBeUndefined();
  });

  it.each([
    ['a setuid bit', (e: Entry) => ({ ...e, mode: e.mode | 0o4000 }), /mode/],
    ['another owner', (e: Entry) => ({ ...e, uid: 4242 }), /uid/],
    ['a capability', (e: Entry) => ({ ...e, xattrs: { 'security.capability': 'AQAAAg==' } }), /xattr/],
    ['another size', (e: Entry) => ({ ...e, size: e.size - 1 }), /size/],
  ])('refuses %s on a file', async (_what, lie, message) => {
    const path = truth.entries.find((e) => e.type === 'file' && e.size > 10)!.path;
    const served = withEntry(truth, path, lie);
    await expect(auditLayer({ served, truth, source: sourceOver(gz) })).rejects.toMatchObject({
      code: 'INTEGRITY',
      message: expect.stringMatching(message) as unknown,
    });
  });

  it('refuses a file mapped to other bytes of the layer', async () => {
    const files = truth.entries.filter((e) => e.type === 'file' && e.size > 100);
    const [a, b] = [files[0]!, files[1]!];
    const size = Math.min(a.size, b.size);
    // Both trees agree on the size, so only the bytes differ.
    const served = withEntry(truth, a.path, (e) => ({ ...e, dataOffset: b.dataOffset!, size }));
    const sized = withEntry(truth, a.path, (e) => ({ ...e, size }));
    await expect(auditLayer({ served, truth: sized, source: sourceOver(gz) })).rejects.toThrow(/other bytes/);
  });

  it('refuses an extra entry and a missing one', async () => {
    const extra: LayerIndex = {
      ...truth,
      entries: [
        ...truth.entries,
        {
          path: 'zz-dev',
          type: 'char',
          mode: 0o666,
          uid: 0,
          gid: 0,
          size: 0,
          mtimeMs: 0,
          devMajor: 1,
          devMinor: 5,
        },
      ],
    };
    await expect(auditLayer({ served: extra, truth, source: sourceOver(gz) })).rejects.toThrow(
      /in the index but not in the layer/,
    );
    const gone = truth.entries.find((e) => e.type === 'file')!.path;
    const missing: LayerIndex = { ...truth, entries: truth.entries.filter((e) => e.path !== gone) };
    await expect(auditLayer({ served: missing, truth, source: sourceOver(gz) })).rejects.toThrow(
      /in the layer but not in its index/,
    );
  });
});
