// ReadyImages: what a finished hint keeps for the Prepares (found by name and manifest, trees built), for its TTL
// and within its layer cap, oldest images first out; a release or clear forgets it.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { parseReference } from '../../src/image/reference.js';
import type { ProvidedIndex } from '../../src/index/provider.js';
import { silentLogger } from '../../src/log.js';
import { ReadyImages } from '../../src/prefetch/ready-images.js';
import type { ResolvedImage } from '../../src/registry/client.js';
import { fakeIndex } from './fixtures.js';

function image(name: string, layers: LayerIndex[]) {
  const img = {
    ref: parseReference(`registry.test:5000/${name}:1`),
    manifestDigest: sha256(`manifest ${name}`),
    manifest: { layers: layers.map((l) => ({ digest: l.layerDigest })) },
  } as unknown as ResolvedImage;
  const layersOf = { diffIds: layers.map((l) => l.layerDigest), chainIds: layers.map((l) => l.layerDigest) };
  const provided = layers.map((index): ProvidedIndex => ({
    index,
    root: { kind: 'built', diffId: index.layerDigest },
    key: `built-${index.layerDigest.slice(7, 15)}`,
    origin: 'local',
    durationMs: 0,
  }));
  return { img, layersOf, provided };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('ReadyImages', () => {
  afterEach(() => vi.useRealTimers());

  it('finds a staged layer by the name and manifest it was reached by, with its tree built', async () => {
    const l0 = fakeIndex('r0', 2, 1000, [{ path: 'a', offset: 0, size: 10 }]);
    const l1 = fakeIndex('r1', 2);
    const { img, layersOf, provided } = image('app', [l0, l1]);
    const ready = new ReadyImages({ ttlMs: 60_000, maxLayers: 10, log: silentLogger() });
    ready.stage(img, layersOf, provided);
    expect(ready.knows(img.ref)).toBe(true);
    const found = ready.find(img.ref, img.manifestDigest, l1.layerDigest);
    expect(found?.position).toBe(1);
    expect(found?.provided.index).toBe(l1);
    expect(ready.find(img.ref, sha256('other manifest'), l1.layerDigest)).toBeUndefined();
    expect(ready.find(parseReference('registry.test:5000/app:2'), img.manifestDigest, l1.layerDigest)).toBe(
      undefined,
    );
    expect(ready.find(img.ref, img.manifestDigest, sha256('not a layer'))).toBeUndefined();
    for (let i = 0; i < 3; i++) await flush();
    expect(ready.tree(l0)?.lookup('a')?.size).toBe(10);
    expect(ready.tree(l1)).toBeDefined();
    ready.clear();
    expect(ready.counts()).toEqual({ images: 0, layers: 0 });
    expect(ready.tree(l0)).toBeUndefined();
  });

  it('forgets an image after its TTL, on release, and the oldest first past the layer cap', () => {
    vi.useFakeTimers();
    const ready = new ReadyImages({ ttlMs: 1000, maxLayers: 3, log: silentLogger() });
    const x = image('x', [fakeIndex('x0', 1), fakeIndex('x1', 1)]);
    const y = image('y', [fakeIndex('y0', 1), fakeIndex('y1', 1)]);
    ready.stage(x.img, x.layersOf, x.provided);
    vi.advanceTimersByTime(500);
    const releaseY = ready.stage(y.img, y.layersOf, y.provided); // 4 layers > 3: x goes
    expect(ready.knows(x.img.ref)).toBe(false);
    expect(ready.counts()).toEqual({ images: 1, layers: 2 });
    releaseY();
    expect(ready.knows(y.img.ref)).toBe(false);
    ready.stage(y.img, y.layersOf, y.provided);
    vi.advanceTimersByTime(999);
    expect(ready.knows(y.img.ref)).toBe(true);
    vi.advanceTimersByTime(1);
    expect(ready.knows(y.img.ref)).toBe(false);
    expect(ready.counts()).toEqual({ images: 0, layers: 0 });
  });

  it('keeps nothing with a TTL of 0 or an image over the cap by itself', () => {
    const x = image('x', [fakeIndex('x0', 1), fakeIndex('x1', 1)]);
    const off = new ReadyImages({ ttlMs: 0, maxLayers: 10, log: silentLogger() });
    off.stage(x.img, x.layersOf, x.provided);
    expect(off.knows(x.img.ref)).toBe(false);
    const small = new ReadyImages({ ttlMs: 1000, maxLayers: 1, log: silentLogger() });
    small.stage(x.img, x.layersOf, x.provided);
    expect(small.counts()).toEqual({ images: 0, layers: 0 });
  });
});
