// Images made by real producers — ctr-remote (eStargz, zstd:chunked) and skopeo 1.9 (zstd:chunked, plain zstd,
// Docker schema 2, a Docker manifest list) — mounted by `ferry mount` equal GNU tar's extraction of the same
// layers merged by OCI rules. The project's own writers stay for the hostile cases no producer makes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  layerCompression,
  MediaType,
  parseManifest,
  type ImageIndex,
  type ImageManifest,
} from '../../src/image/manifest.js';
import { parseReference } from '../../src/image/reference.js';
import type { RegistryClient } from '../../src/registry/client.js';
import {
  requireBinaries,
  startContainerd,
  CTR_REMOTE_BINARY,
  type TestContainerd,
} from '../helpers/containerd.js';
import { gzipLayer, makeCorpus, type CorpusLayer } from '../helpers/corpus.js';
import { ferry, ferryEnv, startMount, treeManifest } from '../helpers/ferry-cli.js';
import { ociMerge } from '../helpers/oci-merge.js';
import { writeOciLayout } from '../helpers/oci-layout.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { skopeo } from '../helpers/skopeo.js';

const TOC_DIGEST = 'containerd.io/snapshot/stargz/toc.digest';
const ESTARGZ_SIZE = 'io.containers.estargz.uncompressed-size';
/** The key containers/storage wrote before it moved to `io.github.containers.zstd-chunked.*`; Ferry reads both. */
const ZSTD_CHUNKED_CHECKSUM = 'io.containers.zstd-chunked.manifest-checksum';
const ZSTD_CHUNKED_POSITION = 'io.containers.zstd-chunked.manifest-position';

let registry: TestRegistry;
let containerd: TestContainerd;
let client: RegistryClient;
let work: string;
let corpus: CorpusLayer[];
type Tree = Awaited<ReturnType<typeof treeManifest>>;
let reference: Tree;
const envDirs: string[] = [];

const repo = (name: string): string => `${registry.host}/producers/${name}`;

beforeAll(async () => {
  requireBinaries([CTR_REMOTE_BINARY]);
  registry = await startRegistry();
  client = testRegistryClient();
  work = mkdtempSync(join(tmpdir(), 'ferry-producers-'));
  corpus = makeCorpus(join(work, 'src'), { smallFiles: 1000, bigFileBytes: 2 * 1024 * 1024 });
  ociMerge(
    corpus.map((l) => l.tar),
    join(work, 'reference'),
  );
  reference = await treeManifest(join(work, 'reference'));

  // ctr-remote converts what containerd holds: pull a plain gzip image into a private containerd first.
  const plain = repo('plain:gzip');
  await pushImage(client, plain, {
    layers: corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip })),
  });
  containerd = await startContainerd({ snapshotterSocket: join(work, 'no-proxy-snapshotter.sock') });
  await containerd.ctr(['image', 'pull', '--plain-http', plain]);
  for (const [flag, target] of [
    ['--estargz', repo('ctr-remote:estargz')],
    ['--zstdchunked', repo('ctr-remote:zstdchunked')],
  ] as const) {
    await containerd.ctrRemote(['image', 'convert', flag, '--oci', plain, target], { timeoutMs: 120_000 });
    await containerd.ctr(['image', 'push', '--plain-http', target]);
  }

  // skopeo reads uncompressed layers from an OCI layout and compresses them itself.
  const layout = join(work, 'layout');
  writeOciLayout(layout, 'latest', [
    { layers: corpus.map((l) => l.tar), platform: { os: 'linux', architecture: 'amd64' } },
  ]);
  const multi = join(work, 'layout-multi');
  writeOciLayout(multi, 'latest', [
    { layers: [corpus[2]!.tar], platform: { os: 'linux', architecture: 'arm64' } },
    { layers: corpus.map((l) => l.tar), platform: { os: 'linux', architecture: 'amd64' } },
  ]);
  const push = ['copy', '--dest-tls-verify=false'];
  await skopeo([
    ...push,
    '--dest-compress-format',
    'zstd:chunked',
    `oci:${layout}:latest`,
    `docker://${repo('skopeo:zstdchunked')}`,
  ]);
  await skopeo([
    ...push,
    '--dest-compress-format',
    'zstd',
    `oci:${layout}:latest`,
    `docker://${repo('skopeo:zstd')}`,
  ]);
  await skopeo([...push, '--format', 'v2s2', `oci:${layout}:latest`, `docker://${repo('skopeo:v2s2')}`]);
  await skopeo([
    ...push,
    '--all',
    '--format',
    'v2s2',
    `oci:${multi}:latest`,
    `docker://${repo('skopeo:list')}`,
  ]);
}, 300_000);

afterAll(async () => {
  await containerd?.stop();
  await client?.close();
  await registry?.stop();
  for (const d of [work, ...envDirs]) if (d !== undefined) rmSync(d, { recursive: true, force: true });
});

async function manifestOf(ref: string): Promise<{ mediaType: string | undefined; manifest: ImageManifest }> {
  const raw = await client.fetchManifest(parseReference(ref));
  const parsed = parseManifest(raw.bytes, raw.mediaType, ref);
  if (parsed.kind !== 'manifest') throw new Error(`${ref} is an index`);
  return { mediaType: raw.mediaType, manifest: parsed.manifest };
}

/** eStargz metadata entries: in the blob (GNU tar would extract them) but not in the image's tree. */
const ESTARGZ_META = ['stargz.index.json', '.prefetch.landmark', '.no.prefetch.landmark'];

/** GNU tar's extraction, merged by OCI rules, of the layers `manifest` names, as the producer compressed them. */
async function producerReference(ref: string, manifest: ImageManifest): Promise<Tree> {
  const tars = await Promise.all(
    manifest.layers.map(async (l) => {
      const blob = await client.fetchBlob(parseReference(ref), l.digest, 1 << 30);
      if (layerCompression(l.mediaType) === 'gzip') return gunzipSync(blob);
      if (layerCompression(l.mediaType) === 'zstd') {
        return execFileSync('zstd', ['-dc'], { input: blob, maxBuffer: 1 << 30 });
      }
      return blob;
    }),
  );
  const dir = mkdtempSync(join(work, 'extract-'));
  ociMerge(tars, dir, ESTARGZ_META);
  return treeManifest(dir);
}

/** The corpus as described with mtimes left out (a producer may round them, see below). */
function withoutMtimes(t: Tree): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(t.entries).map(([p, e]) => [
      p,
      Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'mtime')),
    ]),
  );
}

/**
 * Mounts `ref` on a fresh node, hands the `mounted` event to `check`, and compares the tree with GNU tar's
 * extraction of the very blobs the producer wrote; returns how many entries' mtimes were rounded up.
 */
async function mountAndCompare(
  ref: string,
  manifest: ImageManifest,
  check: (mounted: Record<string, unknown>) => void,
): Promise<number> {
  const expected = await producerReference(ref, manifest);
  const env = ferryEnv();
  envDirs.push(env.dir);
  const target = join(env.dir, 'rootfs');
  const m = await startMount(ref, target, env);
  let ok = false;
  try {
    check(m.mounted);
    const mounted = await treeManifest(target);
    expect(withoutMtimes(mounted)).toEqual(withoutMtimes(expected));
    expect(mounted.hardlinks).toEqual(expected.hardlinks);
    // Everything but mtimes is the corpus itself.
    expect(withoutMtimes(mounted)).toEqual(withoutMtimes(reference));
    expect(mounted.hardlinks).toEqual(reference.hardlinks);
    expect(mounted.entries['usr/bin/tool']?.['mode']).toBe('4755');
    expect(mounted.entries['opt/app/old']).toBeUndefined();
    // Whole seconds (floored) of the mount against the blob's tar headers: equal, or one up where rounded.
    const shifts = Object.keys(mounted.entries)
      .filter((p) => mounted.entries[p]?.['mtime'] !== undefined)
      .map((p) => Number(mounted.entries[p]!['mtime']) - Number(expected.entries[p]!['mtime']));
    expect(shifts.filter((d) => d !== 0 && d !== 1)).toEqual([]);
    ok = true;
    return shifts.filter((d) => d === 1).length;
  } finally {
    await ferry(['umount', target], env);
    const exit = await m.exited;
    if (ok) expect(exit.code).toBe(0);
  }
}

/**
 * ctr-remote's TOCs (eStargz and its zstd:chunked) hold RFC 3339 mtimes rounded to the nearest second while the
 * tar headers in the same blob keep GNU tar's sub-second PAX mtimes; Ferry serves a TOC-indexed layer's
 * metadata from the TOC, as stargz-snapshotter does.
 */
const ROUNDS = true;

type Layers = Array<{ format: string; indexSource: string; trust: string }>;

describe.each([
  {
    name: 'ctr-remote --estargz --oci',
    tag: 'ctr-remote:estargz',
    manifestType: MediaType.ociManifest,
    layerType: MediaType.ociLayerGzip,
    annotations: [TOC_DIGEST, ESTARGZ_SIZE],
    format: 'estargz',
    indexSource: 'toc',
    trust: 'TOC',
    mtimesRounded: ROUNDS,
  },
  {
    name: 'ctr-remote --zstdchunked --oci',
    tag: 'ctr-remote:zstdchunked',
    manifestType: MediaType.ociManifest,
    layerType: MediaType.ociLayerZstd,
    annotations: [TOC_DIGEST, ESTARGZ_SIZE, ZSTD_CHUNKED_CHECKSUM, ZSTD_CHUNKED_POSITION],
    format: 'zstd-chunked',
    indexSource: 'toc',
    trust: 'TOC',
    mtimesRounded: ROUNDS,
  },
  {
    name: 'skopeo --dest-compress-format zstd:chunked',
    tag: 'skopeo:zstdchunked',
    manifestType: MediaType.ociManifest,
    layerType: MediaType.ociLayerZstd,
    annotations: [ZSTD_CHUNKED_CHECKSUM, ZSTD_CHUNKED_POSITION],
    format: 'zstd-chunked',
    indexSource: 'toc',
    trust: 'TOC',
    mtimesRounded: false,
  },
  {
    name: 'skopeo --dest-compress-format zstd',
    tag: 'skopeo:zstd',
    manifestType: MediaType.ociManifest,
    layerType: MediaType.ociLayerZstd,
    annotations: [],
    format: 'zstd',
    indexSource: 'built',
    trust: 'built',
    mtimesRounded: false,
  },
  {
    name: 'skopeo --format v2s2 (Docker schema 2)',
    tag: 'skopeo:v2s2',
    manifestType: MediaType.dockerManifest,
    layerType: MediaType.dockerLayerGzip,
    annotations: [],
    format: 'gzip',
    indexSource: 'built',
    trust: 'built',
    mtimesRounded: false,
  },
])('an image made by $name', (c) => {
  it('carries what that producer writes, and mounts equal to the OCI-merged GNU tar extraction', async () => {
    const ref = repo(c.tag);
    const { mediaType, manifest } = await manifestOf(ref);
    expect(mediaType).toBe(c.manifestType);
    expect(manifest.layers).toHaveLength(3);
    for (const layer of manifest.layers) {
      expect(layer.mediaType).toBe(c.layerType);
      expect(Object.keys(layer.annotations ?? {}).sort()).toEqual([...c.annotations].sort());
    }
    const changed = await mountAndCompare(ref, manifest, (mounted) => {
      const layers = mounted['layers'] as Layers;
      expect(layers.map((l) => [l.format, l.indexSource, l.trust])).toEqual(
        manifest.layers.map(() => [c.format, c.indexSource, c.trust]),
      );
    });
    expect(changed > 0, `${changed} entries with mtimes rounded up`).toBe(c.mtimesRounded);
  });
});

describe('a Docker manifest list made by skopeo --all --format v2s2', () => {
  it('lists linux/amd64 and linux/arm64 images, and ferry mounts the amd64 one', async () => {
    const ref = repo('skopeo:list');
    const raw = await client.fetchManifest(parseReference(ref));
    expect(raw.mediaType).toBe(MediaType.dockerManifestList);
    const parsed = parseManifest(raw.bytes, raw.mediaType, ref);
    expect(parsed.kind).toBe('index');
    const list = (parsed as { index: ImageIndex }).index;
    expect(list.manifests.map((d) => [d.mediaType, d.platform?.os, d.platform?.architecture])).toEqual([
      [MediaType.dockerManifest, 'linux', 'arm64'],
      [MediaType.dockerManifest, 'linux', 'amd64'],
    ]);
    const amd64 = list.manifests[1]!.digest;
    const { manifest } = await manifestOf(`${ref.split(':').slice(0, -1).join(':')}@${amd64}`);
    const changed = await mountAndCompare(ref, manifest, (mounted) => {
      expect(mounted['manifestDigest']).toBe(amd64);
      expect((mounted['layers'] as Layers).map((l) => l.format)).toEqual(['gzip', 'gzip', 'gzip']);
    });
    expect(changed).toBe(0);
  });
});
