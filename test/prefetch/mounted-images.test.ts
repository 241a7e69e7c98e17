// MountedImages without FUSE: layers of one image arrive one by one, reads are recorded (also those before the
// image was resolved), the trace is saved when the last layer unmounts; two images keep separate traces.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { parseReference } from '../../src/image/reference.js';
import { silentLogger } from '../../src/log.js';
import type { PrefetchSettings } from '../../src/prefetch/image-prefetch.js';
import { asMerged } from '../../src/prefetch/merge.js';
import { MountedImages } from '../../src/prefetch/mounted-images.js';
import { TRACE_VERSION } from '../../src/prefetch/trace.js';
import { TraceStore } from '../../src/prefetch/trace-store.js';
import type { RegistryClient, ResolvedImage } from '../../src/registry/client.js';
import { CountingSource, fakeIndex } from './fixtures.js';

const settings: PrefetchSettings = {
  enabled: false,
  windowMs: 60_000,
  quietMs: 60_000,
  concurrency: 2,
  budgetBytes: 1e9,
  background: 'none',
  startSetBytes: 0,
  defaultBytesPerLayer: 0,
  maxTraceChunks: 1000,
  pullFromRegistry: false,
};

function image(name: string, layers: LayerIndex[]): ResolvedImage {
  return {
    ref: parseReference(`registry.test:5000/${name}:1`),
    manifestDigest: sha256(`manifest ${name}`),
    manifest: { layers: layers.map((l) => ({ digest: l.layerDigest })) },
  } as unknown as ResolvedImage;
}

async function setup(images: ResolvedImage[], o: { enabled?: boolean; source?: CountingSource } = {}) {
  let resolves = 0;
  const registry = {
    resolve: (ref: { digest?: Digest }) => {
      resolves++;
      const found = images.find((i) => i.manifestDigest === ref.digest);
      return found ? Promise.resolve(found) : Promise.reject(new Error('unknown'));
    },
  } as unknown as RegistryClient;
  const traces = new TraceStore({
    dir: await mkdtemp(join(tmpdir(), 'ferry-mi-')),
    merge: { maxEntries: 1000 },
    log: silentLogger(),
  });
  const registered: Digest[] = [];
  const mi = new MountedImages({
    registry,
    indexes: { get: () => Promise.resolve(undefined) },
    traces,
    source: o.source ?? new CountingSource(),
    settings: { ...settings, enabled: o.enabled ?? false },
    registerBlobs: (_ref, layers) => registered.push(...layers),
    log: silentLogger(),
    layerWaitMs: 2000,
  });
  return { mi, traces, registered, resolves: () => resolves };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MountedImages', () => {
  it('groups layers per manifest, records reads, and saves the trace after the last unmount', async () => {
    const l0 = fakeIndex('m0', 5);
    const l1 = fakeIndex('m1', 5);
    const img = image('app', [l0, l1]);
    const { mi, traces, registered, resolves } = await setup([img]);
    const at = (mountpoint: string, index: LayerIndex) => ({
      mountpoint,
      imageRef: 'registry.test:5000/app:1',
      manifestDigest: img.manifestDigest,
      index,
    });
    const read0 = mi.layerMounting(at('/mnt/0', l0));
    read0(l0, 2, 0); // a read before the image is resolved is buffered, not lost
    await wait(20);
    const read1 = mi.layerMounting(at('/mnt/1', l1));
    await wait(50);
    read1(l1, 4, 0);
    read0(l0, 1, 0);
    read0(l0, 2, 0);
    expect(resolves()).toBe(1);
    expect(registered).toEqual([l0.layerDigest, l1.layerDigest]);
    expect(mi.images()).toEqual([img.manifestDigest]);

    await mi.layerUnmounted('/mnt/0');
    expect(await traces.get(img.manifestDigest)).toBeUndefined(); // one layer still mounted
    await mi.layerUnmounted('/mnt/1');
    const trace = await traces.get(img.manifestDigest);
    expect(trace?.entries.map((e) => [e.layerDigest, e.chunkIndex])).toEqual([
      [l0.layerDigest, 2],
      [l1.layerDigest, 4],
      [l0.layerDigest, 1],
    ]);
    expect(mi.images()).toEqual([]);
  });

  it("plans each layer's share of the trace as that layer mounts, not once the last one has", async () => {
    const l0 = fakeIndex('p0', 6);
    const l1 = fakeIndex('p1', 6);
    const img = image('per-layer', [l0, l1]);
    const source = new CountingSource();
    const { mi, traces } = await setup([img], { enabled: true, source });
    const entry = (ix: LayerIndex, i: number, t: number) => ({
      layerDigest: ix.layerDigest,
      chunkDigest: ix.chunks[i]!.digest,
      chunkIndex: i,
      size: ix.chunks[i]!.size,
      firstAccessMs: t,
    });
    await traces.put(
      asMerged(
        {
          version: TRACE_VERSION,
          manifestDigest: img.manifestDigest,
          recordedAt: new Date().toISOString(),
          durationMs: 10,
          entries: [entry(l1, 5, 0), entry(l0, 3, 1), entry(l1, 2, 2), entry(l0, 4, 3)],
        },
        { maxEntries: 1000 },
      ),
    );
    const at = (mountpoint: string, index: LayerIndex) => ({
      mountpoint,
      imageRef: 'registry.test:5000/per-layer:1',
      manifestDigest: img.manifestDigest,
      index,
    });
    mi.layerMounting(at('/mnt/p0', l0));
    await wait(100);
    // Only the bottom layer is mounted: its traced chunks are fetched already, in trace order.
    expect(source.order.map((o) => [o.layer, o.chunk])).toEqual([
      [l0.layerDigest, 3],
      [l0.layerDigest, 4],
    ]);
    mi.layerMounting(at('/mnt/p1', l1));
    await wait(100);
    expect(source.order.map((o) => [o.layer, o.chunk])).toEqual([
      [l0.layerDigest, 3],
      [l0.layerDigest, 4],
      [l1.layerDigest, 5],
      [l1.layerDigest, 2],
    ]);
    expect(source.order.every((o) => o.priority === 'prefetch')).toBe(true);
    await mi.close();
  });

  it('keeps images apart and saves every open trace on close', async () => {
    const x = fakeIndex('x0', 3);
    const y = fakeIndex('y0', 3);
    const ix = image('x', [x]);
    const iy = image('y', [y]);
    const { mi, traces } = await setup([ix, iy]);
    const rx = mi.layerMounting({
      mountpoint: '/x',
      imageRef: 'r/x:1',
      manifestDigest: ix.manifestDigest,
      index: x,
    });
    const ry = mi.layerMounting({
      mountpoint: '/y',
      imageRef: 'r/y:1',
      manifestDigest: iy.manifestDigest,
      index: y,
    });
    await wait(50);
    rx(x, 0, 0);
    ry(y, 2, 0);
    await mi.close();
    expect((await traces.get(ix.manifestDigest))?.entries.map((e) => e.chunkIndex)).toEqual([0]);
    expect((await traces.get(iy.manifestDigest))?.entries.map((e) => e.chunkIndex)).toEqual([2]);
  });

  it('an image it cannot resolve only costs the recording, never the mount', async () => {
    const z = fakeIndex('z0', 3);
    const { mi, traces } = await setup([]);
    const rz = mi.layerMounting({
      mountpoint: '/z',
      imageRef: 'r/z:1',
      manifestDigest: sha256('nope'),
      index: z,
    });
    rz(z, 1, 0);
    await wait(20);
    await mi.layerUnmounted('/z');
    expect(await traces.get(sha256('nope'))).toBeUndefined();
  });
});
