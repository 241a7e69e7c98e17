// An image to attack and the attacker's tools, shared by the content-trust suites: two gzip layers made by GNU
// tar, the indexes a publisher pushed for them, and a forged index that tells every lie an index can tell.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, inflateRawSync } from 'node:zlib';
import type { Digest } from '../../src/image/digest.js';
import type { Entry, LayerIndex } from '../../src/image/layer-index.js';
import { withDigest } from '../../src/image/reference.js';
import { INDEX_BLOB_MEDIA_TYPE, LAYER_DIGEST_ANNOTATION } from '../../src/index/publish.js';
import { deserializeIndex } from '../../src/index/serialize.js';
import type { RegistryClient, ResolvedImage } from '../../src/registry/client.js';

/** What the image commits to: the forged index says otherwise about each of these. */
export const HONEST = {
  runMode: 0o755,
  data: 'the data the image commits to\n',
  zero: false,
  baseConf: true,
} as const;

/** A gzip layer from files laid out under `dir`, packed by GNU tar as a producer would. */
function layer(dir: string, files: Record<string, { text: string | Buffer; mode?: number }>): Buffer {
  for (const [path, f] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), f.text, { mode: f.mode ?? 0o644 });
  }
  const tar = execFileSync(
    'tar',
    ['--sort=name', '--numeric-owner', '--owner=0', '--group=0', '-C', dir, '-cf', '-', '.'],
    { maxBuffer: 64 << 20 },
  );
  return gzipSync(tar);
}

/** The victim's two layers: a base with /etc/base.conf, and a top with a script, a data file and a big file. */
export function victimLayers(work: string): Buffer[] {
  return [
    layer(join(work, 'base'), {
      'etc/base.conf': { text: 'base config\n' },
      'bin/tool': { text: '#!/bin/sh\necho tool\n', mode: 0o755 },
    }),
    layer(join(work, 'top'), {
      'bin/run.sh': { text: '#!/bin/sh\necho run\n', mode: 0o755 },
      'etc/data': { text: HONEST.data },
      'opt/big': { text: Buffer.alloc(3 << 20, 'ferry-big-file ') },
    }),
  ];
}

/**
 * Both layers' indexes as published in artifact `artifact` of `image`, with their windows inlined again (an
 * attacker republishing them elsewhere needs the windows too).
 */
export async function publishedIndexes(
  client: RegistryClient,
  image: ResolvedImage,
  artifact: string,
): Promise<[LayerIndex, LayerIndex]> {
  const raw = await client.fetchManifest(withDigest(image.ref, artifact as Digest));
  const m = JSON.parse(raw.bytes.toString()) as {
    layers: Array<{ digest: string; mediaType: string; annotations: Record<string, string> }>;
  };
  const one = async (layerDigest: Digest): Promise<LayerIndex> => {
    const blob = m.layers.find(
      (l) => l.annotations[LAYER_DIGEST_ANNOTATION] === layerDigest && l.mediaType === INDEX_BLOB_MEDIA_TYPE,
    )!;
    const index = deserializeIndex(
      await client.fetchBlob(image.ref, blob.digest as Digest, 64 << 20),
      layerDigest,
    );
    const apart = index.windowsBlob;
    if (apart === undefined) return index;
    const all = await client.fetchBlob(image.ref, apart.digest, 64 << 20);
    const windows = apart.refs.map((r) =>
      r.length === 0
        ? new Uint8Array(0)
        : new Uint8Array(inflateRawSync(all.subarray(r.offset, r.offset + r.length))),
    );
    const inline: LayerIndex = { ...index, windows };
    delete (inline as { windowsBlob?: unknown }).windowsBlob;
    return inline;
  };
  return [await one(image.manifest.layers[0]!.digest), await one(image.manifest.layers[1]!.digest)];
}

/**
 * The top layer's index with every lie at once, otherwise well formed: /bin/run.sh setuid root with a capability,
 * /etc/data remapped to the big file's bytes, a device node /bin/zero, and a whiteout hiding the base's config.
 */
export function forgeTop(honest: LayerIndex): LayerIndex {
  const big = honest.entries.find((e) => e.path === 'opt/big')!;
  const entries: Entry[] = honest.entries.map((e) => {
    if (e.path === 'bin/run.sh')
      return {
        ...e,
        mode: 0o4755,
        uid: 0,
        gid: 0,
        xattrs: { 'security.capability': 'AQAAAgAgAAAAAAAAAAAAAAAAAAA=' },
      };
    if (e.path === 'etc/data') return { ...e, dataOffset: big.dataOffset!, size: 4096 };
    return e;
  });
  entries.push(
    {
      path: 'bin/zero',
      type: 'char',
      mode: 0o666,
      uid: 0,
      gid: 0,
      size: 0,
      mtimeMs: 0,
      devMajor: 1,
      devMinor: 5,
    },
    { path: 'etc/base.conf', type: 'whiteout', mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
  );
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { ...honest, entries };
}
