// Builds and pushes small OCI images (layers + config + manifest) and multi-platform indexes for tests.
import { execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { sha256, type Digest } from '../../src/image/digest.js';
import {
  MediaType,
  layerCompression,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
} from '../../src/image/manifest.js';
import { parseReference } from '../../src/image/reference.js';
import type { RegistryClient } from '../../src/registry/client.js';

export interface TestLayer {
  data: Buffer;
  mediaType: string;
  annotations?: Record<string, string>;
}

export interface PushedImage {
  manifestDigest: Digest;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  configDigest: Digest;
}

/** The uncompressed tar's digest: gunzip for gzip; `zstd -dc` (the zstd CLI) for zstd layers. */
export function diffId(layer: TestLayer): Digest {
  switch (layerCompression(layer.mediaType)) {
    case 'gzip':
      return sha256(gunzipSync(layer.data));
    case 'zstd':
      return sha256(execFileSync('zstd', ['-dc'], { input: layer.data, maxBuffer: 1 << 30 }));
    default:
      return sha256(layer.data);
  }
}

/** Pushes layers, a config (rootfs.diff_ids computed) and the manifest under the reference's tag or digest. */
export async function pushImage(
  client: RegistryClient,
  refString: string,
  image: {
    layers: TestLayer[];
    config?: Record<string, unknown>;
    platform?: { os: string; architecture: string; variant?: string };
    subject?: Descriptor;
    artifactType?: string;
    annotations?: Record<string, string>;
  },
): Promise<PushedImage> {
  const ref = parseReference(refString);
  const platform = image.platform ?? { os: 'linux', architecture: 'amd64' };
  const layers: Descriptor[] = [];
  for (const layer of image.layers) {
    const pushed = await client.pushBlob(ref, layer.data);
    layers.push({
      ...pushed,
      mediaType: layer.mediaType,
      ...(layer.annotations ? { annotations: layer.annotations } : {}),
    });
  }
  const config = Buffer.from(
    JSON.stringify({
      ...platform,
      rootfs: { type: 'layers', diff_ids: image.layers.map(diffId) },
      config: {},
      ...image.config,
    }),
  );
  const configDesc = { ...(await client.pushBlob(ref, config)), mediaType: MediaType.ociConfig };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    ...(image.artifactType ? { artifactType: image.artifactType } : {}),
    config: configDesc,
    layers,
    ...(image.subject ? { subject: image.subject } : {}),
    ...(image.annotations ? { annotations: image.annotations } : {}),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await client.pushManifest(
    ref,
    ref.tag ?? sha256(manifestBytes),
    manifestBytes,
    MediaType.ociManifest,
  );
  return { manifestDigest, manifest, manifestBytes, configDigest: configDesc.digest };
}

/** Pushes an OCI index over already-pushed manifests. Extra raw entries (e.g. attestations) may be appended. */
export async function pushIndex(
  client: RegistryClient,
  refString: string,
  entries: Array<
    { image: PushedImage; platform: { os: string; architecture: string; variant?: string } } | Descriptor
  >,
): Promise<{ indexDigest: Digest; index: ImageIndex }> {
  const ref = parseReference(refString);
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: entries.map((e) =>
      'image' in e
        ? {
            mediaType: MediaType.ociManifest,
            digest: e.image.manifestDigest,
            size: e.image.manifestBytes.length,
            platform: e.platform,
          }
        : e,
    ),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const indexDigest = await client.pushManifest(ref, ref.tag ?? sha256(bytes), bytes, MediaType.ociIndex);
  return { indexDigest, index };
}
