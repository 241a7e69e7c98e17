// Two "nodes" (separate state and caches) mount one gzip image through a counting proxy in front of Debian's
// docker-registry: node A's start is recorded and its trace pushed to the registry; node B, with an empty
// state dir, pulls that trace at mount, prefetches it, and its start then reads from the cache.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { gzipLayer, makeCorpus } from '../helpers/corpus.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv, type FerryEnv } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { ferryWith, readWorkingSet, spawnMount, type Event } from '../prefetch/mount-process.js';

const SMALL_FILES = 3000;
const CONFIG = `
[index]
chunkSizeBytes = 65536
spanBytes = 262144

[prefetch]
defaultBytesPerLayer = 0
quietMs = 600000
windowMs = 600000
`;

/** A scattered ~5% of the small files plus two binaries: the "start" of this image. */
const WORKING_SET = [
  'usr/bin/tool',
  'usr/lib/layer2.bin',
  ...Array.from({ length: SMALL_FILES }, (_, i) => i)
    .filter((i) => i % 60 === 7 && (i * 7919) % 9000 > 0)
    .map((i) => `usr/share/data/${String(Math.floor(i / 100)).padStart(3, '0')}/file-${i}.dat`),
];

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let ref: string;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  const corpus = makeCorpus(join(mkdtempSync(join(tmpdir(), 'ferry-pf-')), 'src'), {
    smallFiles: SMALL_FILES,
    bigFileBytes: 3 * 1024 * 1024,
  });
  await pushImage(client, `${registry.host}/app:1`, {
    layers: corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip })),
  });
  ref = `${proxy.host}/app:1`;
  // Indexes published once, by a third node, so A and B both load them instead of streaming the layers.
  await ferry(['index', ref, '--push'], ferryEnv(CONFIG));
}, 300_000);

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await registry?.stop();
});

interface StartResult {
  prefetched: Event;
  unmounted: Event;
  /** Registry traffic while the working set was read. */
  readRequests: number;
  readBlobBytes: number;
}

async function start(env: FerryEnv): Promise<StartResult> {
  const target = join(env.dir, 'rootfs');
  const m = spawnMount(ref, target, env);
  try {
    const mounted = await m.waitFor('mounted');
    const layers = mounted['layers'] as Array<{ indexSource: string }>;
    expect(layers.map((l) => l.indexSource)).toEqual(['registry', 'registry', 'registry']);
    const prefetched = await m.waitFor('prefetched');
    proxy.resetStats();
    await readWorkingSet(target, WORKING_SET);
    const read = { readRequests: proxy.stats.rangeRequests, readBlobBytes: proxy.stats.blobBytes };
    await ferry(['umount', target], env);
    const exit = await m.exited;
    expect(exit.code, exit.stderr).toBe(0);
    return { prefetched, unmounted: await m.waitFor('unmounted', 1000), ...read };
  } finally {
    await m.stop();
  }
}

describe('trace-driven prefetch across two nodes', () => {
  it('records node A, shares the trace through the registry, and prefetches it on node B', async () => {
    const nodeA = ferryEnv(CONFIG);
    const a = await start(nodeA);
    expect(a.prefetched).toMatchObject({ traceOrigin: 'none', stats: { planned: 0 } });
    expect(a.readRequests).toBeGreaterThan(10);

    // The recorded trace names the files the start read.
    const shown = JSON.parse(await ferryWith(['trace', 'show', ref, '--json'], nodeA)) as {
      origin: string;
      startups: number;
      chunks: number;
      files: Array<{ path: string }>;
    };
    expect(shown).toMatchObject({ origin: 'local', startups: 1 });
    const traced = new Set(shown.files.map((f) => f.path));
    expect(WORKING_SET.filter((p) => !traced.has(p))).toEqual([]);
    // A chunk holds neighbours too, but the trace is far smaller than the image.
    expect(shown.files.length).toBeLessThan(SMALL_FILES / 3);

    const pushed = await ferryWith(['trace', 'push', ref], nodeA);
    expect(pushed).toMatch(/pushed trace .* as sha256:/);

    const nodeB = ferryEnv(CONFIG);
    const b = await start(nodeB);
    const pf = b.prefetched as Event & { traceOrigin: string; stats: Record<string, number> };
    expect(pf.traceOrigin).toBe('registry');
    expect(pf.stats['fetched']).toBe(shown.chunks);
    expect(pf.stats['errors']).toBe(0);

    const stats = b.unmounted['prefetch'] as Record<string, number>;
    const served = b.unmounted['served'] as { origin: { chunks: number } };
    expect(stats['hits']).toBeGreaterThan(0);
    expect(stats['hits']).toBeGreaterThanOrEqual(stats['demandChunks']! * 0.9);
    // Demand reads on B hardly touched the registry; on A every chunk came from it.
    const demandFromRegistryB = served.origin.chunks - stats['fetched']!;
    const servedA = a.unmounted['served'] as { origin: { chunks: number } };
    console.info(
      `prefetch: node A read ${a.readRequests} range requests (${a.readBlobBytes} B); node B ` +
        `${b.readRequests} (${b.readBlobBytes} B) after prefetching ${stats['fetched']} chunks; ` +
        `hits ${stats['hits']}/${stats['demandChunks']}`,
    );
    expect(demandFromRegistryB).toBeLessThanOrEqual(servedA.origin.chunks / 10);
    expect(b.readRequests).toBeLessThanOrEqual(a.readRequests / 10);
    expect(b.readBlobBytes).toBeLessThan(a.readBlobBytes / 10);

    // B's own start was recorded too, merged onto the pulled trace.
    const shownB = JSON.parse(await ferryWith(['trace', 'show', ref, '--json'], nodeB)) as {
      startups: number;
    };
    expect(shownB.startups).toBe(2);
  });

  it('pull stores the published trace locally; show prints a timeline', async () => {
    const nodeC = ferryEnv(CONFIG);
    const pulled = await ferryWith(['trace', 'pull', ref], nodeC);
    expect(pulled).toMatch(/pulled trace .* chunks/);
    const text = await ferryWith(['trace', 'show', ref], nodeC);
    expect(text).toMatch(/trace of .* \(.*, local\)/);
    expect(text).toContain('timeline:');
    expect(text).toContain('usr/bin/tool');
  });

  it('push without a local trace is a clear NOT_FOUND', async () => {
    await expect(ferryWith(['trace', 'push', ref], ferryEnv(CONFIG))).rejects.toThrow(
      /NOT_FOUND: no local trace/,
    );
  });
});
