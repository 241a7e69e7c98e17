// Differential test for zstd layers: plain zstd (one frame, and many frames) and zstd:chunked images mounted
// by `ferry mount` equal GNU tar's extraction merged by OCI rules; `ferry index` reports them; and a 5% read of
// the zstd:chunked image fetches a small fraction of its bytes (counted by a proxy in front of the registry).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv, startMount, treeManifest } from '../helpers/ferry-cli.js';
import { ociMerge } from '../helpers/oci-merge.js';
import { pushImage, type TestLayer } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { writeZstdChunked } from '../helpers/zstd-chunked-writer.js';

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let corpus: CorpusLayer[];
let reference: Awaited<ReturnType<typeof treeManifest>>;
const blobBytes: Record<string, number> = {};

const zstd = (data: Buffer): Buffer =>
  execFileSync('zstd', ['-3', '--single-thread', '-q', '-c'], { input: data, maxBuffer: 1 << 30 });
/** Concatenated frames of 512 KiB of tar each. */
function zstdFrames(tar: Buffer): Buffer {
  const piece = 512 * 1024;
  const parts: Buffer[] = [];
  for (let o = 0; o < tar.length; o += piece) parts.push(zstd(tar.subarray(o, o + piece)));
  return Buffer.concat(parts);
}

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  const work = mkdtempSync(join(tmpdir(), 'ferry-zstd-'));
  corpus = makeCorpus(join(work, 'src'), { smallFiles: 2500, bigFileBytes: 5 * 1024 * 1024 });
  ociMerge(
    corpus.map((l) => l.tar),
    join(work, 'reference'),
  );
  reference = await treeManifest(join(work, 'reference'));
  const variants: Record<string, TestLayer[]> = {
    zstd: corpus.map((l) => ({ data: zstd(l.tar), mediaType: MediaType.ociLayerZstd })),
    'zstd-frames': corpus.map((l) => ({ data: zstdFrames(l.tar), mediaType: MediaType.ociLayerZstd })),
    'zstd-chunked': corpus.map((l) => {
      const z = writeZstdChunked(l.tar, { chunkSizeBytes: 1024 * 1024 });
      return { data: z.blob, mediaType: MediaType.ociLayerZstd, annotations: z.annotations };
    }),
  };
  for (const [tag, layers] of Object.entries(variants)) {
    blobBytes[tag] = layers.reduce((a, l) => a + l.data.length, 0);
    await pushImage(client, `${proxy.host}/zstd:${tag}`, { layers });
  }
}, 300_000);

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await registry?.stop();
});

describe.each([
  ['zstd', 'zstd', 'built'],
  ['zstd-frames', 'zstd', 'built'],
  ['zstd-chunked', 'zstd-chunked', 'toc'],
])('ferry mount of the %s corpus', (tag, format, source) => {
  it('equals the OCI-merged GNU tar extraction, then unmounts cleanly', async () => {
    const env = ferryEnv();
    const target = join(env.dir, 'rootfs');
    const m = await startMount(`${proxy.host}/zstd:${tag}`, target, env);
    let ok = false;
    try {
      const layers = m.mounted['layers'] as Array<{ format: string; indexSource: string }>;
      expect(layers.map((l) => [l.format, l.indexSource])).toEqual([
        [format, source],
        [format, source],
        [format, source],
      ]);
      const mounted = await treeManifest(target);
      expect(mounted.entries).toEqual(reference.entries);
      expect(mounted.hardlinks).toEqual(reference.hardlinks);
      expect(mounted.entries['usr/bin/tool']?.['mode']).toBe('4755');
      ok = true;
    } finally {
      await ferry(['umount', target], env);
      const exit = await m.exited;
      if (ok) expect(exit.code).toBe(0);
    }
  });
});

describe('zstd:chunked lazy reads', () => {
  it('ferry index reads only the TOCs, and a 5% read fetches a small share of the image', async () => {
    const ref = `${proxy.host}/zstd:zstd-chunked`;
    proxy.resetStats();
    const { stdout } = await ferry(['index', ref, '--json'], ferryEnv());
    const out = JSON.parse(stdout) as { layers: Array<{ format: string; origin: string }> };
    expect(out.layers.map((l) => l.format)).toEqual(['zstd-chunked', 'zstd-chunked', 'zstd-chunked']);
    const tocBytes = proxy.stats.blobBytes;
    expect(tocBytes).toBeLessThan(blobBytes['zstd-chunked']! / 10);

    // Demand reads only: the mount-time default prefetch and read-ahead would fetch more than was asked for.
    const env = ferryEnv('[prefetch]\nenabled = false\n\n[readAhead]\nenabled = false\n');
    const target = join(env.dir, 'rootfs');
    proxy.resetStats();
    const m = await startMount(ref, target, env);
    try {
      const mountBytes = proxy.stats.blobBytes;
      // Read whole files, in a fixed order, until 5% of the image's file bytes have been read.
      const files = Object.entries(reference.entries)
        .filter(([, e]) => e['type'] === 'file')
        .map(([p]) => p)
        .sort();
      const total = files.reduce((a, p) => a + Number(reference.entries[p]!['size']), 0);
      let read = 0;
      let i = 0;
      for (; i < files.length && read < total * 0.05; i += 7) {
        const p = files[i]!;
        // Async: the proxy serving the mount's Range reads runs on this process's event loop.
        const bytes = await readFile(join(target, p));
        expect(createHash('sha256').update(bytes).digest('hex'), p).toBe(reference.entries[p]!['sha256']);
        read += bytes.length;
      }
      const readBytes = proxy.stats.blobBytes - mountBytes;
      const image = blobBytes['zstd-chunked']!;
      console.log(
        `zstd:chunked 5% read: ${read} file bytes of ${total}; fetched ${readBytes} blob bytes ` +
          `(+ ${mountBytes} at mount, ${tocBytes} for ferry index) of a ${image}-byte image ` +
          `(${((100 * (readBytes + mountBytes)) / image).toFixed(1)}%)`,
      );
      expect(readBytes + mountBytes).toBeLessThan(image * 0.15);
    } finally {
      await ferry(['umount', target], env);
      await m.exited;
    }
  });
});

describe.each(['zstd', 'zstd-frames'])('plain %s after ferry index --push', (tag) => {
  it('a new node mounts from the published index and reads chunks from the origin by Range', async () => {
    const ref = `${proxy.host}/zstd:${tag}`;
    await ferry(['index', ref, '--push'], ferryEnv());
    const env = ferryEnv('[prefetch]\nenabled = false\n\n[readAhead]\nenabled = false\n');
    const target = join(env.dir, 'rootfs');
    proxy.resetStats();
    const m = await startMount(ref, target, env);
    try {
      const layers = m.mounted['layers'] as Array<{ format: string; indexSource: string }>;
      // Multi-frame layers read by Range from the published index. A layer whose chunks all sit in its first
      // frame has no restart point: it is streamed once (and cached) instead of decoded from byte 0 per chunk.
      if (tag === 'zstd-frames') expect(layers[0]!.indexSource).toBe('registry');
      else expect(layers[0]!.indexSource).toBe('built');
      expect(layers[2]!.indexSource).toBe('registry'); // one chunk: a Range read is the whole cost anyway
      const files = Object.keys(reference.entries)
        .filter((p) => reference.entries[p]!['type'] === 'file')
        .sort();
      let read = 0;
      for (let i = 0; i < files.length; i += Math.ceil(files.length / 20)) {
        const p = files[i]!;
        const bytes = await readFile(join(target, p));
        expect(createHash('sha256').update(bytes).digest('hex'), p).toBe(reference.entries[p]!['sha256']);
        read += bytes.length;
      }
      console.log(
        `${tag} cold reads from origin: ${read} file bytes; fetched ${proxy.stats.blobBytes} blob bytes ` +
          `of a ${blobBytes[tag]!}-byte image`,
      );
      // Either way, no layer crosses the link more than about once (single frame: one stream, not one per chunk).
      if (tag === 'zstd-frames') expect(proxy.stats.blobBytes).toBeLessThan(blobBytes[tag]!);
      else expect(proxy.stats.blobBytes).toBeLessThan(1.5 * blobBytes[tag]!);
    } finally {
      await ferry(['umount', target], env);
      await m.exited;
    }
  });
});
