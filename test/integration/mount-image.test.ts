// Differential test: an image mounted by `ferry mount` equals GNU tar's extraction of the same layers merged
// by OCI rules — for plain gzip, uncompressed and eStargz variants, served by Debian's docker-registry.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { estargzFromLayer, gzipLayer, makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { ferry, ferryEnv, startMount, treeManifest } from '../helpers/ferry-cli.js';
import { ociMerge } from '../helpers/oci-merge.js';
import { pushImage, type TestLayer } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';

let registry: TestRegistry;
let client: RegistryClient;
let corpus: CorpusLayer[];
let reference: Awaited<ReturnType<typeof treeManifest>>;

beforeAll(async () => {
  registry = await startRegistry();
  client = testRegistryClient();
  const work = mkdtempSync(join(tmpdir(), 'ferry-diff-'));
  corpus = makeCorpus(join(work, 'src'), { smallFiles: 2500, bigFileBytes: 5 * 1024 * 1024 });
  ociMerge(
    corpus.map((l) => l.tar),
    join(work, 'reference'),
  );
  reference = await treeManifest(join(work, 'reference'));

  const variants: Record<string, () => Promise<TestLayer[]>> = {
    gzip: () =>
      Promise.resolve(corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip }))),
    tar: () => Promise.resolve(corpus.map((l) => ({ data: l.tar, mediaType: MediaType.ociLayer }))),
    estargz: async () =>
      Promise.all(
        corpus.map(async (l) => {
          const e = await estargzFromLayer(l, { chunkSizeBytes: 1024 * 1024 });
          return {
            data: e.blob,
            mediaType: MediaType.ociLayerGzip,
            annotations: { 'containerd.io/snapshot/stargz/toc.digest': e.tocDigest },
          };
        }),
      ),
  };
  for (const [tag, make] of Object.entries(variants)) {
    await pushImage(client, `${registry.host}/corpus:${tag}`, { layers: await make() });
  }
}, 300_000);

afterAll(async () => {
  await client?.close();
  await registry?.stop();
});

describe.each(['gzip', 'tar', 'estargz'])('ferry mount of the %s corpus', (variant) => {
  it('equals the OCI-merged GNU tar extraction, then unmounts cleanly', async () => {
    const env = ferryEnv();
    const target = join(env.dir, 'rootfs');
    const ref = `${registry.host}/corpus:${variant}`;
    const m = await startMount(ref, target, env);
    let ok = false;
    try {
      const layers = m.mounted['layers'] as Array<{ format: string; indexSource: string }>;
      expect(layers).toHaveLength(3);
      const expectFormat = variant === 'estargz' ? 'estargz' : variant;
      expect(layers.every((l) => l.format === expectFormat)).toBe(true);
      expect(layers.every((l) => l.indexSource === (variant === 'estargz' ? 'toc' : 'built'))).toBe(true);

      const mounted = await treeManifest(target);
      // Whole-tree equality first gives one readable diff; the spot checks below say what matters most.
      expect(mounted.entries).toEqual(reference.entries);
      expect(mounted.hardlinks).toEqual(reference.hardlinks);
      expect(mounted.hardlinks).toContain('usr/bin/tool=usr/bin/tool-hardlink');
      expect(mounted.entries['etc/removed.conf']).toBeUndefined();
      expect(mounted.entries['opt/app/old']).toBeUndefined();
      expect(mounted.entries['opt/app/new.txt']).toBeDefined();
      expect(mounted.entries['usr/bin/tool']?.['mode']).toBe('4755');
      expect(Object.keys(mounted.entries).some((p) => p.includes('.wh.'))).toBe(false);
      ok = true;
    } finally {
      await ferry(['umount', target], env);
      const exit = await m.exited;
      if (ok) expect(exit.code).toBe(0);
      expect(exit.unmounted).toBeDefined();
    }
  });
});
