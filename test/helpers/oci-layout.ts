// Writes an OCI image layout directory (oci-layout, index.json, blobs/) from uncompressed layer tars: the input a
// real producer (skopeo) reads, holding no compressed blob it could hand back instead of compressing afresh.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../../src/image/digest.js';
import { MediaType, type Descriptor } from '../../src/image/manifest.js';

export interface LayoutImage {
  /** Uncompressed layer tars, lowest first. */
  layers: readonly Buffer[];
  platform: { os: string; architecture: string };
}

function putBlob(dir: string, bytes: Buffer, mediaType: string): Descriptor {
  const digest = sha256(bytes);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  return { mediaType, digest, size: bytes.length };
}

function putImage(dir: string, image: LayoutImage): Descriptor {
  const layers = image.layers.map((tar) => putBlob(dir, tar, MediaType.ociLayer));
  const config = putBlob(
    dir,
    Buffer.from(
      JSON.stringify({
        ...image.platform,
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
        config: {},
      }),
    ),
    MediaType.ociConfig,
  );
  const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers };
  return {
    ...putBlob(dir, Buffer.from(JSON.stringify(manifest)), MediaType.ociManifest),
    platform: image.platform,
  };
}

/**
 * Writes the layout at `dir` with one tag, `tag`: the image itself when given one, else an OCI image index over
 * all of them.
 */
export function writeOciLayout(dir: string, tag: string, images: readonly LayoutImage[]): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const manifests = images.map((img) => putImage(dir, img));
  const top =
    manifests.length === 1
      ? manifests[0]!
      : putBlob(
          dir,
          Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests })),
          MediaType.ociIndex,
        );
  const entry: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.size };
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ ...entry, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
}
