// ImagePrefetch end to end without FUSE: replays a stored trace, counts hits, records the start and saves it.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { ImagePrefetch, type PrefetchSettings } from '../../src/prefetch/image-prefetch.js';
import { TraceStore } from '../../src/prefetch/trace-store.js';
import type { ResolvedImage } from '../../src/registry/client.js';
import { CountingSource, fakeIndex, MANIFEST } from './fixtures.js';

const a = fakeIndex('ia', 20);
const image = { manifestDigest: MANIFEST } as unknown as ResolvedImage;
const settings: PrefetchSettings = {
  enabled: true,
  windowMs: 60_000,
  quietMs: 60_000,
  concurrency: 2,
  budgetBytes: 1e9,
  background: 'none',
  startSetBytes: 0,
  defaultBytesPerLayer: 3000,
  maxTraceChunks: 1000,
  pullFromRegistry: false,
};

async function setup() {
  const traces = new TraceStore({
    dir: await mkdtemp(join(tmpdir(), 'ferry-ip-')),
    merge: { maxEntries: 1000 },
    log: silentLogger(),
  });
  const make = (source: CountingSource) =>
    new ImagePrefetch({ image, indexes: [a], source, traces, settings, log: silentLogger() });
  return { traces, make };
}

describe('ImagePrefetch', () => {
  it('uses the default without a trace, records the start, and replays it next time', async () => {
    const { traces, make } = await setup();
    const first = make(new CountingSource());
    const r1 = await first.start();
    expect(r1).toMatchObject({ traceOrigin: 'none', phase: 'done', stats: { fetched: 3 } });
    for (const [chunk, t] of [
      [9, 0],
      [4, 10],
      [15, 20],
    ] as const)
      first.onChunkRead(a, chunk, t);
    await first.stop();
    expect((await traces.get(MANIFEST))!.entries.map((e) => e.chunkIndex)).toEqual([9, 4, 15]);

    const source = new CountingSource();
    const second = make(source);
    const r2 = await second.start();
    expect(r2.traceOrigin).toBe('local');
    expect(source.order.map((o) => o.chunk)).toEqual([9, 4, 15]);
    second.onChunkRead(a, 9, 0);
    second.onChunkRead(a, 4, 3);
    expect(second.status()).toMatchObject({
      phase: 'done',
      chunksDone: 3,
      traceStartups: 1,
      stats: { hits: 2 },
    });
    await second.stop();
    expect((await traces.get(MANIFEST))!.startups).toBe(2);
  });

  it('stop() cancels a running prefetch', async () => {
    const { make } = await setup();
    const p = make(new CountingSource(10_000));
    const started = p.start();
    await new Promise((r) => setTimeout(r, 20));
    await p.stop();
    expect((await started).phase).toBe('cancelled');
  });
});
