// Published indexes found both ways OCI allows: through a registry's referrers API (a 1.1 front on the test
// registry that answers pushes with OCI-Subject, so no fallback tag is written) and through the `<alg>-<hex>`
// tag-schema fallback on plain docker-registry 2.8.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType, parseManifest } from '../../src/image/manifest.js';
import { parseReference } from '../../src/image/reference.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { referrersTag } from '../../src/registry/referrers.js';
import { INDEX_ARTIFACT_TYPE } from '../../src/index/publish.js';
import { gzipLayer, makeCorpus } from '../helpers/corpus.js';
import { ferry, ferryEnv, startMount } from '../helpers/ferry-cli.js';
import { pushImage, type PushedImage } from '../helpers/push-image.js';
import { ReferrersRegistry } from '../helpers/referrers-registry.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';

let registry: TestRegistry;
let front: ReferrersRegistry;
let client: RegistryClient;
let work: string;
let layers: Array<{ data: Buffer; mediaType: string }>;
const dirs: string[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  front = await new ReferrersRegistry(registry.host).start();
  client = testRegistryClient();
  work = mkdtempSync(join(tmpdir(), 'ferry-referrers-'));
  const corpus = makeCorpus(join(work, 'src'), { smallFiles: 200, bigFileBytes: 512 * 1024 });
  layers = corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip }));
}, 120_000);

afterAll(async () => {
  await client?.close();
  await front?.stop();
  await registry?.stop();
  for (const d of [work, ...dirs]) if (d !== undefined) rmSync(d, { recursive: true, force: true });
});

/** Publishes a signed index for `ref`, then mounts it on a fresh node: every layer must come from the registry. */
async function publishAndMount(ref: string): Promise<{ artifact: string }> {
  const pushEnv = ferryEnv();
  dirs.push(pushEnv.dir);
  const { stdout } = await ferry(['index', ref, '--push', '--json'], pushEnv);
  const { artifact } = JSON.parse(stdout) as { artifact: string };
  expect(artifact).toMatch(/^sha256:/);
  const env = ferryEnv('[prefetch]\nenabled = false\n');
  dirs.push(env.dir);
  const target = join(env.dir, 'rootfs');
  const m = await startMount(ref, target, env);
  try {
    const mounted = m.mounted['layers'] as Array<{ indexSource: string; trust: string }>;
    expect(mounted.map((l) => l.indexSource)).toEqual(['registry', 'registry', 'registry']);
    expect(mounted.every((l) => l.trust.startsWith('signed'))).toBe(true);
  } finally {
    await ferry(['umount', target], env);
    await m.exited;
  }
  return { artifact };
}

async function tagStatus(repo: string, image: PushedImage): Promise<number> {
  const res = await fetch(
    `http://${registry.host}/v2/${repo}/manifests/${referrersTag(image.manifestDigest)}`,
    {
      headers: { accept: MediaType.ociIndex },
    },
  );
  await res.arrayBuffer();
  return res.status;
}

describe('a registry with the referrers API', () => {
  it('gets the index artifact listed under its subject, and a new node finds it through GET /referrers', async () => {
    const ref = `${front.host}/api/app:1`;
    const image = await pushImage(client, ref, { layers });
    front.requests.length = 0;
    const { artifact } = await publishAndMount(ref);

    const listing = `GET /v2/api/app/referrers/${image.manifestDigest}?artifactType=${encodeURIComponent(INDEX_ARTIFACT_TYPE)}`;
    expect(front.requests).toContain(listing);
    // The registry indexed the subject (OCI-Subject): no fallback tag was read back and rewritten.
    const fallback = referrersTag(image.manifestDigest);
    expect(front.requests.filter((r) => r.includes(`/manifests/${fallback}`))).toEqual([]);
    expect(await tagStatus('api/app', image)).toBe(404);

    const res = await fetch(`http://${front.host}/v2/api/app/referrers/${image.manifestDigest}`);
    const index = parseManifest(
      Buffer.from(await res.arrayBuffer()),
      res.headers.get('content-type') ?? '',
      'x',
    );
    expect(
      index.kind === 'index' ? index.index.manifests.map((d) => [d.digest, d.artifactType]) : [],
    ).toEqual([[artifact, INDEX_ARTIFACT_TYPE]]);
  });
});

describe('docker-registry 2.8 without the referrers API', () => {
  it('gets the `sha256-<hex>` fallback tag listing the artifact, and a new node finds it there', async () => {
    const ref = `${registry.host}/fallback/app:1`;
    const image = await pushImage(client, ref, { layers });
    const { artifact } = await publishAndMount(ref);
    const tagged = await client.fetchManifest(
      parseReference(`${registry.host}/fallback/app:${referrersTag(image.manifestDigest)}`),
    );
    const index = parseManifest(tagged.bytes, tagged.mediaType, 'fallback tag');
    expect(
      index.kind === 'index' ? index.index.manifests.map((d) => [d.digest, d.artifactType]) : [],
    ).toEqual([[artifact, INDEX_ARTIFACT_TYPE]]);
  });
});
