// The real hint runner over fakes (registry, index provider, chunk source) and a real TraceStore: trace order,
// prefetch priority, byte budget, progress, the default plan without a trace, and cancel.
import { mkdtemp, readFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AbortedError } from '../../src/errors.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { parseReference } from '../../src/image/reference.js';
import type { IndexProvider } from '../../src/index/provider.js';
import { silentLogger } from '../../src/log.js';
import type { ChunkProgress, HintRun, HintSpec } from '../../src/prefetch/hint-job.js';
import { hintRunner } from '../../src/prefetch/hint-runner.js';
import { ReadyImages } from '../../src/prefetch/ready-images.js';
import type { PrefetchSettings } from '../../src/prefetch/image-prefetch.js';
import { asMerged } from '../../src/prefetch/merge.js';
import { TraceStore } from '../../src/prefetch/trace-store.js';
import { TRACE_VERSION } from '../../src/prefetch/trace.js';
import type { RegistryClient, ResolvedImage } from '../../src/registry/client.js';
import { parseRunConfig } from '../../src/image/image-config.js';
import { resolveStartSet } from '../../src/prefetch/start-set.js';
import { fileLayer, LayerBytesSource } from './file-layer.js';
import { CountingSource, fakeIndex, MANIFEST } from './fixtures.js';

const a = fakeIndex('ha', 10);
const b = fakeIndex('hb', 10);
const REF = 'registry.test:5000/app:1';
const settings: PrefetchSettings = {
  enabled: false, // mount-time prefetch off: hints do not depend on it
  windowMs: 60_000,
  quietMs: 60_000,
  concurrency: 2,
  budgetBytes: 1e9,
  background: 'none',
  startSetBytes: 0,
  defaultBytesPerLayer: 2000,
  maxTraceChunks: 1000,
  pullFromRegistry: false,
};

function fakes(indexes: LayerIndex[]) {
  const image = {
    ref: parseReference(REF),
    manifestDigest: MANIFEST,
    manifest: { layers: indexes.map((ix) => ({ digest: ix.layerDigest })) },
  } as unknown as ResolvedImage;
  const registry = { resolve: () => Promise.resolve(image) } as unknown as RegistryClient;
  const provider = {
    layersOf: () =>
      Promise.resolve({
        diffIds: indexes.map((ix) => ix.layerDigest),
        chainIds: indexes.map((ix) => ix.layerDigest),
      }),
    forImage: () => Promise.resolve(indexes.map((index) => ({ index, origin: 'local', durationMs: 0 }))),
  } as unknown as IndexProvider;
  return { registry, provider };
}

function fakeRun(spec: Partial<HintSpec> = {}) {
  const controller = new AbortController();
  const log: string[] = [];
  const progress: ChunkProgress[] = [];
  const run: HintRun = {
    jobId: 'pf-test',
    spec: { imageRef: REF, priority: 0, ...spec },
    signal: controller.signal,
    phase: (p) => log.push(p),
    resolved: (d) => log.push(`resolved ${d}`),
    planned: (origin, t) => log.push(`planned ${origin} ${t.chunks}/${t.bytes}`),
    progress: (p) => progress.push(p),
  };
  return { run, controller, log, progress };
}

async function traceStore(): Promise<TraceStore> {
  const traces = new TraceStore({
    dir: await mkdtemp(join(tmpdir(), 'ferry-hr-')),
    merge: { maxEntries: 1000 },
    log: silentLogger(),
  });
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
        manifestDigest: MANIFEST,
        recordedAt: new Date().toISOString(),
        durationMs: 10,
        entries: [entry(b, 7, 0), entry(a, 3, 1), entry(b, 1, 2), entry(a, 9, 3)],
      },
      { maxEntries: 1000 },
    ),
  );
  return traces;
}

describe('hintRunner', () => {
  it("fetches the trace's chunks in order at prefetch priority, within the byte budget", async () => {
    const source = new CountingSource(1);
    const runner = hintRunner({
      ...fakes([a, b]),
      traces: await traceStore(),
      source,
      settings: { ...settings, concurrency: 1 },
      log: silentLogger(),
    });
    const r = fakeRun({ budgetBytes: 3000 });
    await runner(r.run);
    expect(r.log).toEqual([
      'RESOLVING',
      `resolved ${MANIFEST}`,
      'INDEXING',
      'planned local 3/3000',
      'FETCHING',
    ]);
    expect(source.order).toEqual([
      { layer: b.layerDigest, chunk: 7, priority: 'prefetch' },
      { layer: a.layerDigest, chunk: 3, priority: 'prefetch' },
      { layer: b.layerDigest, chunk: 1, priority: 'prefetch' },
    ]);
    expect(r.progress.at(-1)).toMatchObject({ chunksDone: 3, chunksTotal: 3, bytesDone: 3000 });
  });

  it('without a trace prefetches the first bytes of each layer, skipping cached chunks', async () => {
    const source = new CountingSource(1);
    const cachedDigest = a.chunks[0]!.digest;
    const runner = hintRunner({
      ...fakes([a, b]),
      traces: new TraceStore({
        dir: await mkdtemp(join(tmpdir(), 'ferry-hr-')),
        merge: { maxEntries: 1000 },
        log: silentLogger(),
      }),
      source,
      cached: { has: (d) => d === cachedDigest },
      settings,
      log: silentLogger(),
    });
    const r = fakeRun();
    await runner(r.run);
    expect(r.log).toContain('planned none 4/4000');
    expect(source.order.map((o) => o.chunk)).toEqual([1, 0, 1]);
    expect(r.progress.at(-1)).toMatchObject({ chunksDone: 4, chunksCached: 1, chunksFailed: 0 });
  });

  it('prefetches the image start set when there is no trace', async () => {
    const lib = '/lib/x86_64-linux-gnu';
    const layer = fileLayer('hs', [
      { path: 'bin/ls', data: await readFile('/bin/ls') },
      { path: 'srv/unrelated.bin', data: Buffer.alloc(512 * 1024, 1) },
      ...(await Promise.all(
        ['libc.so.6', 'libselinux.so.1', 'libpcre2-8.so.0'].map(async (l) => ({
          path: `${lib.slice(1)}/${l}`,
          data: await readFile(await realpath(`${lib}/${l}`)),
        })),
      )),
    ]);
    const config = Buffer.from(JSON.stringify({ config: { Cmd: ['ls'], Env: ['PATH=/bin'] } }));
    const f = fakes([layer.index]);
    const image = {
      ...(await f.registry.resolve(parseReference(REF))),
      manifest: { config: { digest: MANIFEST } },
    };
    const registry = {
      resolve: () => Promise.resolve(image),
      imageConfig: () => Promise.resolve(config),
    } as unknown as RegistryClient;
    const source = new LayerBytesSource([layer]);
    const runner = hintRunner({
      ...f,
      registry,
      traces: new TraceStore({
        dir: await mkdtemp(join(tmpdir(), 'ferry-hr-')),
        merge: { maxEntries: 1000 },
        log: silentLogger(),
      }),
      source,
      settings: { ...settings, startSetBytes: 16 * 1024 * 1024, defaultBytesPerLayer: 0 },
      log: silentLogger(),
    });
    const r = fakeRun();
    await runner(r.run);
    const set = await resolveStartSet({
      indexes: [layer.index],
      run: parseRunConfig(config, 'test'),
      budgetBytes: 16 * 1024 * 1024,
      fetch: (req) => new LayerBytesSource([layer]).fetch(req),
      log: silentLogger(),
    });
    expect(set.files.map((x) => x.path)).toEqual([
      '/bin/ls',
      ...['libselinux.so.1', 'libc.so.6', 'libpcre2-8.so.0'].map((l) => `${lib}/${l}`),
    ]);
    expect(r.log, JSON.stringify(r.log)).toContain(`planned none ${set.chunks.length}/${set.bytes}`);
    // Each chunk of the set fetched by the runner, and nothing of the unrelated file.
    const key = (c: { chunk: number }) => c.chunk;
    // (A head read again after its chunk was fetched is asked of the source again: the node's store answers it.)
    const byRunner = source.fetched;
    expect(new Set(byRunner.map(key))).toEqual(new Set(set.chunks.map(key)));
    const unrelated = layer.index.entries.find((e) => e.path === 'srv/unrelated.bin')!;
    const first = unrelated.dataOffset! + 65536;
    expect(
      byRunner.some(
        (c) =>
          layer.index.chunks[c.chunk]!.offset >= first &&
          layer.index.chunks[c.chunk]!.offset + 65536 <= unrelated.dataOffset! + unrelated.size,
      ),
    ).toBe(false);
  });

  it('stops fetching when the job is cancelled', async () => {
    const big = fakeIndex('hbig', 200);
    const source = new CountingSource(20);
    const runner = hintRunner({
      ...fakes([big]),
      traces: new TraceStore({
        dir: await mkdtemp(join(tmpdir(), 'ferry-hr-')),
        merge: { maxEntries: 1000 },
        log: silentLogger(),
      }),
      source,
      settings: { ...settings, defaultBytesPerLayer: 200_000 },
      log: silentLogger(),
    });
    const r = fakeRun();
    const running = runner(r.run);
    await new Promise((res) => setTimeout(res, 60));
    r.controller.abort(new AbortedError('cancelled'));
    await expect(running).rejects.toThrow('cancelled');
    const fetched = source.order.length;
    await new Promise((res) => setTimeout(res, 60));
    expect(source.order.length).toBe(fetched);
    expect(fetched).toBeLessThan(20);
  });

  it('leaves the image ready for its Prepares when done, and takes that back when cancelled', async () => {
    const big = fakeIndex('hready', 200);
    const traces = () =>
      mkdtemp(join(tmpdir(), 'ferry-hr-')).then(
        (dir) => new TraceStore({ dir, merge: { maxEntries: 1000 }, log: silentLogger() }),
      );
    const ready = new ReadyImages({ ttlMs: 60_000, maxLayers: 100, log: silentLogger() });
    const ref = parseReference(REF);
    const done = hintRunner({
      ...fakes([a, b]),
      traces: await traces(),
      source: new CountingSource(),
      settings,
      ready,
      log: silentLogger(),
    });
    await done(fakeRun().run);
    expect(ready.find(ref, MANIFEST, b.layerDigest)?.position).toBe(1);
    ready.clear();

    const cancelled = hintRunner({
      ...fakes([big]),
      traces: await traces(),
      source: new CountingSource(20),
      settings: { ...settings, defaultBytesPerLayer: 200_000 },
      ready,
      log: silentLogger(),
    });
    const r = fakeRun();
    const running = cancelled(r.run);
    await new Promise((res) => setTimeout(res, 60));
    expect(ready.knows(ref)).toBe(true); // staged as soon as the indexes are in, while chunks are fetched
    r.controller.abort(new AbortedError('cancelled'));
    await expect(running).rejects.toThrow('cancelled');
    expect(ready.knows(ref)).toBe(false);
    expect(ready.counts()).toEqual({ images: 0, layers: 0 });
  });
});
