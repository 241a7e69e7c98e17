// Adjacent cold chunks fetched together: each one after the first takes its zran window from the chunk before
// it, which is still in flight, instead of a Range read of the windows blob, and their spans travel in one Range
// request of the layer blob — counted at a real registry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { parseReference } from '../../src/image/reference.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { splitWindows } from '../../src/index/publish.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { closeDecodePool, fetchChunkFromOrigin } from '../../src/source/origin.js';
import { OriginSource } from '../../src/source/origin-source.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { startRegistry, testRegistryClient, type TestRegistry } from '../helpers/registry.js';
import { makeLayer } from '../index/layer-fixture.js';

const layer = makeLayer({ smallFiles: 400, seed: 23 });
let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
});
afterAll(async () => {
  await client.close();
  await proxy.stop();
  await registry.stop();
  await closeDecodePool();
});

describe('a window from the chunk in flight before it', () => {
  it('adjacent packs fetched together cost one span request and one window request, not two each', async () => {
    const full = await buildIndexFromStream({
      layerDigest: sha256(layer.gz),
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob: new MemoryBlobReader(layer.gz),
    });
    const split = splitWindows(full)!;
    const ref = parseReference(`${proxy.host}/t/inflight:1`);
    await client.pushBlob(ref, layer.gz);
    const wb = await client.pushBlob(ref, split.blob);
    const lazy: LayerIndex = {
      ...full,
      windows: [],
      windowsBlob: { digest: wb.digest, size: split.blob.length, refs: split.refs },
    };
    const run = adjacentPacks(lazy, 5);
    expect(run.length).toBe(5);
    const origin = (): OriginSource =>
      new OriginSource({
        blobFor: () => client.blobReader(ref, lazy.layerDigest, layer.gz.length),
        fetch: fetchChunkFromOrigin,
      });
    const check = (i: number, got: Buffer): void => {
      const c = lazy.chunks[i]!;
      expect(got.equals(layer.tar.subarray(c.offset, c.offset + c.size))).toBe(true);
    };

    // One at a time (nothing cached, nothing in flight): a span and a window each.
    proxy.resetStats();
    const alone = origin();
    for (const i of run) check(i, await alone.fetch({ index: lazy, chunk: i, priority: 'demand' }));
    expect(proxy.stats.rangeRequests).toBe(2 * run.length);
    expect(alone.windowStats().fromInflight).toBe(0);

    // Together: the first fetches its window, every later one waits for the chunk before it; one merged span.
    proxy.resetStats();
    const together = origin();
    const got = await Promise.all(
      run.map((i) => together.fetch({ index: lazy, chunk: i, priority: 'demand' })),
    );
    run.forEach((i, k) => check(i, got[k]!));
    expect(together.windowStats()).toMatchObject({ fetched: 1, fromInflight: run.length - 1 });
    expect(together.rangeStats()).toEqual({ requests: 2, merged: run.length - 1 });
    expect(proxy.stats.rangeRequests).toBe(2);
  });

  it('with one decode at a time, a big chunk waits for the chunk before it rather than fetch its cheap window', async () => {
    const full = await buildIndexFromStream({
      layerDigest: sha256(layer.gz),
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob: new MemoryBlobReader(layer.gz),
    });
    const split = splitWindows(full)!;
    const ref = parseReference(`${proxy.host}/t/inflight:2`);
    await client.pushBlob(ref, layer.gz);
    const wb = await client.pushBlob(ref, split.blob);
    const lazy: LayerIndex = {
      ...full,
      windows: [],
      windowsBlob: { digest: wb.digest, size: split.blob.length, refs: split.refs },
    };
    const i = bigPair(lazy);
    expect(i).toBeGreaterThan(0);
    const pair = [i - 1, i];
    const origin = (decodeParallelism: number | undefined): OriginSource =>
      new OriginSource({
        blobFor: () => client.blobReader(ref, lazy.layerDigest, layer.gz.length),
        fetch: fetchChunkFromOrigin,
        decodeParallelism,
      });
    const fetchPair = async (o: OriginSource): Promise<void> => {
      const got = await Promise.all(pair.map((c) => o.fetch({ index: lazy, chunk: c, priority: 'demand' })));
      pair.forEach((c, k) => {
        const ch = lazy.chunks[c]!;
        expect(got[k]!.equals(layer.tar.subarray(ch.offset, ch.offset + ch.size))).toBe(true);
      });
    };
    // Decodes in parallel: the later chunk's window is cheap next to its span, so it is fetched alongside.
    const parallel = origin(undefined);
    await fetchPair(parallel);
    expect(parallel.windowStats()).toMatchObject({ fetched: 2, fromInflight: 0 });
    // One decode at a time: it waits for the chunk before it, one window request fewer.
    const serial = origin(1);
    await fetchPair(serial);
    expect(serial.windowStats()).toMatchObject({ fetched: 1, fromInflight: 1 });
  });
});

/** A chunk whose window the chunk before it holds whole, and is cheap (under 1/8) next to its own span. */
function bigPair(ix: LayerIndex): number {
  const refs = ix.windowsBlob!.refs;
  for (let i = 1; i < ix.chunks.length; i++) {
    const c = ix.chunks[i]!;
    const cp = ix.checkpoints[c.checkpoint]!;
    const r = refs[cp.window];
    const p = ix.chunks[i - 1]!;
    const pr = refs[ix.checkpoints[p.checkpoint]!.window];
    if (
      r !== undefined &&
      pr !== undefined &&
      r.size > 0 &&
      pr.size > 0 &&
      !cp.memberStart &&
      p.offset <= cp.uncompressedOffset - r.size &&
      p.offset + p.size >= cp.uncompressedOffset &&
      r.length * 8 < c.compressedEnd - c.compressedStart
    )
      return i;
  }
  return -1;
}

/** `n` consecutive chunks, each needing a window held whole by the chunk before it, and dear next to its span. */
function adjacentPacks(ix: LayerIndex, n: number): number[] {
  const refs = ix.windowsBlob!.refs;
  const holdsWindowOf = (i: number): boolean => {
    const c = ix.chunks[i]!;
    const cp = ix.checkpoints[c.checkpoint]!;
    const r = refs[cp.window]!;
    const p = ix.chunks[i - 1];
    return (
      r.size > 0 &&
      p !== undefined &&
      p.offset <= cp.uncompressedOffset - r.size &&
      p.offset + p.size >= cp.uncompressedOffset &&
      r.length * 8 >= c.compressedEnd - c.compressedStart
    );
  };
  for (let s = 1; s + n <= ix.chunks.length; s++) {
    const run = Array.from({ length: n }, (_, k) => s + k);
    if (
      run.every((i, k) =>
        k === 0 ? refs[ix.checkpoints[ix.chunks[i]!.checkpoint]!.window]!.size > 0 : holdsWindowOf(i),
      )
    )
      return run;
  }
  return [];
}
