// Publishing layer indexes: the artifact (an OCI manifest whose subject is the image manifest, one blob per
// layer), its cosign-layout signature, and a Ferry-enabled image index that binds the image to the artifact.
import type { KeyObject } from 'node:crypto';
import { sha256, type Digest } from '../image/digest.js';
import { MAX_CONFIG_BYTES, parseConfigPlatform } from '../image/image-config.js';
import type { LayerIndex, WindowRef } from '../image/layer-index.js';
import { deflateRawSync } from 'node:zlib';
import { MediaType, parseManifest, type Descriptor } from '../image/manifest.js';
import { withTag } from '../image/reference.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { serializeIndex } from './serialize.js';
import {
  signPayload,
  signatureTag,
  simpleSigningPayload,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
} from './signature.js';

export const INDEX_ARTIFACT_TYPE = 'application/vnd.ferry.layer-index.v1';
export const INDEX_BLOB_MEDIA_TYPE = 'application/vnd.ferry.layer-index.v1+gzip';
/** A layer's zran windows, raw-deflated one by one; the index names each by offset, length and digest. */
export const WINDOWS_BLOB_MEDIA_TYPE = 'application/vnd.ferry.layer-index.windows.v1';
export const LAYER_DIGEST_ANNOTATION = 'dev.ferry.layer.digest';
/** On a Ferry-enabled image index's artifact entry: the image manifest the artifact indexes. */
export const INDEX_SUBJECT_ANNOTATION = 'dev.ferry.index.subject';
/** Runtimes skip index entries of this platform (as they skip BuildKit's attestations). */
const NOT_A_PLATFORM = { os: 'unknown', architecture: 'unknown' };
const EMPTY_JSON = Buffer.from('{}');
/** Signatures kept under one `.sig` tag; older ones beyond this are dropped when a new one is added. */
const MAX_SIGNATURES = 16;

export interface PublishedArtifact {
  readonly digest: Digest;
  readonly size: number;
}

/** Pushes every index as a blob and one manifest whose subject is the image manifest. */
export async function publishIndexes(
  registry: RegistryClient,
  image: ResolvedImage,
  indexes: readonly LayerIndex[],
  signal?: AbortSignal,
): Promise<PublishedArtifact> {
  const config = await registry.pushBlob(image.ref, EMPTY_JSON, signal);
  const layers: Descriptor[] = [];
  for (const full of indexes) {
    // What a node needs to mount is the index without its windows; each window is fetched with its chunk.
    const split = splitWindows(full);
    let index = full;
    if (split !== undefined) {
      const windows = await registry.pushBlob(image.ref, split.blob, signal);
      layers.push({
        mediaType: WINDOWS_BLOB_MEDIA_TYPE,
        digest: windows.digest,
        size: windows.size,
        annotations: { [LAYER_DIGEST_ANNOTATION]: full.layerDigest },
      });
      index = {
        ...full,
        windows: [],
        windowsBlob: { digest: windows.digest, size: windows.size, refs: split.refs },
      };
    }
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
  const digest = await registry.pushManifest(image.ref, sha256(bytes), bytes, MediaType.ociManifest, signal);
  return { digest, size: bytes.length };
}

/** The index's windows as one blob of raw-deflated windows and a ref per window; undefined when it has none. */
export function splitWindows(index: LayerIndex): { blob: Buffer; refs: WindowRef[] } | undefined {
  if (index.windows.length === 0) return undefined;
  const pieces: Buffer[] = [];
  const refs: WindowRef[] = [];
  let offset = 0;
  for (const w of index.windows) {
    const raw = w.length === 0 ? Buffer.alloc(0) : deflateRawSync(w, { level: 9 });
    refs.push({ offset, length: raw.length, digest: sha256(w), size: w.length });
    pieces.push(raw);
    offset += raw.length;
  }
  return { blob: Buffer.concat(pieces), refs };
}

/**
 * Signs the artifact as `cosign sign --key` would: a simple-signing payload naming its digest, pushed as a layer
 * of the manifest under the `sha256-<hex>.sig` tag (other signatures already there are kept).
 */
export async function signArtifact(
  registry: RegistryClient,
  image: ResolvedImage,
  artifact: Digest,
  key: KeyObject,
  signal?: AbortSignal,
): Promise<void> {
  const ref = image.ref;
  const payload = simpleSigningPayload(`${ref.registry}/${ref.repository}`, artifact);
  const blob = await registry.pushBlob(ref, payload, signal);
  const layer: Descriptor = {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    digest: blob.digest,
    size: blob.size,
    annotations: { [SIGNATURE_ANNOTATION]: signPayload(key, payload) },
  };
  const tagRef = withTag(ref, signatureTag(artifact));
  const earlier = await registry.fetchManifest(tagRef, signal).then(
    (m) => {
      const p = parseManifest(m.bytes, m.mediaType, tagRef.toString());
      return p.kind === 'manifest' ? p.manifest.layers : [];
    },
    () => [],
  );
  const layers = [...earlier.filter((l) => l.digest !== blob.digest), layer].slice(-MAX_SIGNATURES);
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const configDesc = await registry.pushBlob(ref, config, signal);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDesc.digest,
        size: configDesc.size,
      },
      layers,
    }),
  );
  await registry.pushManifest(ref, signatureTag(artifact), manifest, MediaType.ociManifest, signal);
}

/**
 * Pushes an image index under `tag` listing the image's manifests and the artifact (SOCI's "index manifest v2"
 * shape): whoever runs that index's digest runs the image and trusts the index, with no signature involved. The
 * original image is untouched.
 */
export async function publishBoundIndex(
  registry: RegistryClient,
  image: ResolvedImage,
  artifact: PublishedArtifact,
  tag: string,
  signal?: AbortSignal,
): Promise<Digest> {
  const entry: Descriptor = {
    mediaType: MediaType.ociManifest,
    digest: artifact.digest,
    size: artifact.size,
    artifactType: INDEX_ARTIFACT_TYPE,
    platform: NOT_A_PLATFORM,
    annotations: { [INDEX_SUBJECT_ANNOTATION]: image.manifestDigest },
  };
  let manifests: Descriptor[];
  if (image.indexManifests !== undefined) {
    // Keep every platform; replace an earlier Ferry entry for this manifest.
    manifests = image.indexManifests.filter(
      (d) => d.annotations?.[INDEX_SUBJECT_ANNOTATION] !== image.manifestDigest,
    );
  } else {
    const config = await registry.fetchBlob(
      image.ref,
      image.manifest.config.digest,
      MAX_CONFIG_BYTES,
      signal,
    );
    const platform = parseConfigPlatform(config);
    manifests = [
      {
        mediaType: image.mediaType,
        digest: image.manifestDigest,
        size: image.manifestBytes.length,
        ...(platform !== undefined ? { platform } : {}),
      },
    ];
  }
  const bytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [...manifests, entry] }),
  );
  return registry.pushManifest(withTag(image.ref, tag), tag, bytes, MediaType.ociIndex, signal);
}
