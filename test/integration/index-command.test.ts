// `ferry index` against a real registry: JSON output for gzip, uncompressed and eStargz images, and
// `--push` publishing indexes that a later mount on an empty node discovers instead of streaming layers.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { estargzFromLayer, gzipLayer, makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv, startMount } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';

interface IndexJson {
  manifestDigest: string;
  artifact?: string;
  layers: Array<{
    format: string;
    origin: string;
    files: number;
    chunks: number;
    fileList: Array<{ path: string; type: string; size: number; sha256?: string }>;
  }>;
}

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let corpus: CorpusLayer[];

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  corpus = makeCorpus(mkdtempSync(join(tmpdir(), 'ferry-index-')), {
    smallFiles: 400,
    bigFileBytes: 3 << 20,
  });
  const gz = corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip }));
  await pushImage(client, `${proxy.host}/ix:gzip`, { layers: gz });
  await pushImage(client, `${proxy.host}/ix:tar`, {
    layers: corpus.map((l) => ({ data: l.tar, mediaType: MediaType.ociLayer })),
  });
  const esgz = await Promise.all(corpus.map((l) => estargzFromLayer(l)));
  await pushImage(client, `${proxy.host}/ix:estargz`, {
    layers: esgz.map((e) => ({
      data: e.blob,
      mediaType: MediaType.ociLayerGzip,
      annotations: { 'containerd.io/snapshot/stargz/toc.digest': e.tocDigest },
    })),
  });
}, 180_000);

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await registry?.stop();
});

describe.each([
  ['gzip', 'gzip', 'built'],
  ['tar', 'tar', 'built'],
  ['estargz', 'estargz', 'toc'],
])('ferry index --json on the %s image', (tag, format, origin) => {
  it('lists every layer with its files and content hashes', async () => {
    const { stdout } = await ferry(['index', `${proxy.host}/ix:${tag}`, '--json'], ferryEnv());
    const out = JSON.parse(stdout) as IndexJson;
    expect(out.manifestDigest).toMatch(/^sha256:/);
    expect(out.layers.map((l) => [l.format, l.origin])).toEqual([
      [format, origin],
      [format, origin],
      [format, origin],
    ]);
    const base = out.layers[0]!;
    const tool = base.fileList.find((f) => f.path === '/usr/bin/tool');
    const want = createHash('sha256')
      .update(readFileSync(join(corpus[0]!.dir, 'usr/bin/tool')))
      .digest('hex');
    expect(tool).toMatchObject({ type: 'file', size: 70_000, sha256: `sha256:${want}` });
    expect(base.fileList.find((f) => f.path === '/usr/bin/tool-symlink')).toMatchObject({ type: 'symlink' });
    expect(base.files).toBeGreaterThan(400);
    expect(out.layers[1]!.fileList.find((f) => f.path === '/etc/removed.conf')).toMatchObject({
      type: 'whiteout',
    });
  });
});

describe('ferry index --push', () => {
  it('publishes indexes that a new node mounts from, without streaming the layers', async () => {
    const ref = `${proxy.host}/ix:gzip`;
    const { stdout } = await ferry(['index', ref, '--push', '--json'], ferryEnv());
    const pushed = JSON.parse(stdout) as IndexJson;
    expect(pushed.artifact).toMatch(/^sha256:/);

    const table = await ferry(['index', ref], ferryEnv());
    expect(table.stdout).toMatch(/layer\s+format\s+source/);
    expect(table.stdout).toContain('registry');

    proxy.resetStats();
    const env = ferryEnv('[prefetch]\nenabled = false\n'); // count what the mount itself needs
    const target = join(env.dir, 'rootfs');
    const m = await startMount(ref, target, env);
    try {
      const layers = m.mounted['layers'] as Array<{ indexSource: string }>;
      expect(layers.map((l) => l.indexSource)).toEqual(['registry', 'registry', 'registry']);
      const layerBytes = corpus.reduce((a, l) => a + gzipLayer(l.tar).length, 0);
      // Only the index artifact crossed the link, not the layers.
      expect(proxy.stats.blobBytes).toBeLessThan(layerBytes / 4);
    } finally {
      await ferry(['umount', target], env);
      await m.exited;
    }
  });
});
