// Publishing layer indexes to the registry as an OCI artifact that refers to the image (subject), and
// finding them again: referrers API, or the `sha256-<hex>` tag schema on registries without it.
import { FormatError } from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { MediaType, parseManifest, type Descriptor } from '../image/manifest.js';
import { withDigest, type ImageReference } from '../image/reference.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { deserializeIndex, serializeIndex } from './serialize.js';

export const INDEX_ARTIFACT_TYPE = 'application/vnd.ferry.layer-index.v1';
export const INDEX_BLOB_MEDIA_TYPE = 'application/vnd.ferry.layer-index.v1+gzip';
export const LAYER_DIGEST_ANNOTATION = 'dev.ferry.layer.digest';
const EMPTY_JSON = Buffer.from('{}');
const MAX_INDEX_BLOB_BYTES = 512 * 1024 * 1024;

/** Pushes every index as a blob and one manifest whose subject is the image manifest; returns its digest. */
export async function publishIndexes(
  registry: RegistryClient,
  image: ResolvedImage,
  indexes: readonly LayerIndex[],
  signal?: AbortSignal,
): Promise<Digest> {
  const config = await registry.pushBlob(image.ref, EMPTY_JSON, signal);
  const layers: Descriptor[] = [];
  for (const index of indexes) {
    const blob = await registry.pushBlob(image.ref, serializeIndex(index), signal);
    layers.push({
      mediaType: INDEX_BLOB_MEDIA_TYPE,
      digest: blob.digest,
      size: blob.size,
      annotations: { [LAYER_DIGEST_ANNOTATION]: index.layerDigest },
    });
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: INDEX_ARTIFACT_TYPE,
    config: { mediaType: MediaType.ociEmpty, digest: config.digest, size: config.size },
    layers,
    subject: { mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifestBytes.length },
    annotations: { 'org.opencontainers.image.created': new Date().toISOString() },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return registry.pushManifest(image.ref, sha256(bytes), bytes, MediaType.ociManifest, signal);
}

/**
 * Index blobs published for `image`, by layer digest (the newest artifact wins). Empty when there are none.
 * Only artifacts whose subject is the image's own manifest digest are considered.
 */
export async function findPublishedIndexes(
  registry: RegistryClient,
  image: ResolvedImage,
  log: Logger,
  signal?: AbortSignal,
): Promise<Map<Digest, Descriptor>> {
  const found = new Map<Digest, Descriptor>();
  let referrers: Descriptor[];
  try {
    referrers = await registry.referrers(image.ref, image.manifestDigest, INDEX_ARTIFACT_TYPE, signal);
  } catch (e) {
    log.warn({ err: e, ref: image.ref.toString() }, 'cannot list referrers; indexes will be built');
    return found;
  }
  const candidates = referrers
    .filter((d) => d.artifactType === INDEX_ARTIFACT_TYPE)
    .sort((a, b) =>
      (a.annotations?.['org.opencontainers.image.created'] ?? '').localeCompare(
        b.annotations?.['org.opencontainers.image.created'] ?? '',
      ),
    );
  for (const desc of candidates) {
    const ref = withDigest(image.ref, desc.digest);
    const raw = await registry.fetchManifest(ref, signal);
    const parsed = parseManifest(raw.bytes, raw.mediaType, ref.toString());
    if (parsed.kind !== 'manifest' || parsed.manifest.subject?.digest !== image.manifestDigest) continue;
    for (const layer of parsed.manifest.layers) {
      const layerDigest = layer.annotations?.[LAYER_DIGEST_ANNOTATION];
      if (layer.mediaType === INDEX_BLOB_MEDIA_TYPE && layerDigest !== undefined) {
        found.set(layerDigest as Digest, layer);
      }
    }
  }
  return found;
}

/** Downloads and checks one published index blob (digest-verified, then structurally checked). */
export async function fetchPublishedIndex(
  registry: RegistryClient,
  ref: ImageReference,
  blob: Descriptor,
  layerDigest: Digest,
  signal?: AbortSignal,
): Promise<LayerIndex> {
  if (blob.size > MAX_INDEX_BLOB_BYTES) {
    throw new FormatError(`index artifact for layer ${layerDigest} is ${blob.size} bytes; refusing`);
  }
  const bytes = await registry.fetchBlob(ref, blob.digest, MAX_INDEX_BLOB_BYTES, signal);
  return deserializeIndex(bytes, layerDigest);
}
