// Which published index blobs an image may use, and why: those its own (Ferry-enabled) image index lists, and
// those in an artifact signed by a trusted key. A referrer found only through the referrers API is a hint that
// anyone with push access can leave, so an unsigned one is ignored (with one log line).
import { FormatError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { parseManifest, type Descriptor } from '../image/manifest.js';
import { withDigest, withTag } from '../image/reference.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import {
  INDEX_ARTIFACT_TYPE,
  INDEX_BLOB_MEDIA_TYPE,
  INDEX_SUBJECT_ANNOTATION,
  LAYER_DIGEST_ANNOTATION,
} from './publish.js';
import {
  MAX_PAYLOAD_BYTES,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING_MEDIA_TYPE,
  signatureTag,
  signedDigest,
  verifyPayload,
  type TrustedKey,
} from './signature.js';
import type { TrustRoot } from './trust.js';

export interface TrustedBlob {
  readonly blob: Descriptor;
  readonly root: Extract<TrustRoot, { kind: 'bound' } | { kind: 'signed' }>;
}

/** Artifacts looked at per image, newest first: bounds the round trips a crowded referrers list can cause. */
const MAX_CANDIDATES = 8;

export async function findTrustedIndexes(
  registry: RegistryClient,
  image: ResolvedImage,
  keys: readonly TrustedKey[],
  log: Logger,
  signal?: AbortSignal,
): Promise<Map<Digest, TrustedBlob>> {
  const found = new Map<Digest, TrustedBlob>();
  const bound = image.indexManifests?.find(
    (d) =>
      d.artifactType === INDEX_ARTIFACT_TYPE &&
      d.annotations?.[INDEX_SUBJECT_ANNOTATION] === image.manifestDigest,
  );
  if (bound !== undefined && image.indexDigest !== undefined) {
    const via = image.indexDigest;
    for (const blob of await artifactBlobs(registry, image, bound.digest, signal))
      setOnce(found, blob, { kind: 'bound', via, blob: blob.digest });
  }
  if (keys.length === 0) return found;
  let referrers: Descriptor[];
  try {
    referrers = await registry.referrers(image.ref, image.manifestDigest, INDEX_ARTIFACT_TYPE, signal);
  } catch (e) {
    log.warn({ err: e, ref: image.ref.toString() }, 'cannot list referrers; indexes will be built');
    return found;
  }
  const candidates = referrers
    .filter((d) => d.artifactType === INDEX_ARTIFACT_TYPE)
    .sort((a, b) => created(b).localeCompare(created(a)))
    .slice(0, MAX_CANDIDATES);
  for (const desc of candidates) {
    // The artifact's manifest is read while its signature is checked (one round trip less per start); it is only
    // parsed here, and used only if the signature holds.
    const blobs = artifactBlobs(registry, image, desc.digest, signal);
    blobs.catch(() => undefined);
    const keyId = await signedBy(registry, image, desc.digest, keys, signal).catch((e: unknown) => {
      log.warn({ err: e, artifact: desc.digest }, 'index artifact signature unreadable');
      return undefined;
    });
    if (keyId === undefined) {
      log.warn(
        { ref: image.ref.toString(), artifact: desc.digest },
        'published index ignored: not signed by a trusted key',
      );
      continue;
    }
    for (const blob of await blobs) setOnce(found, blob, { kind: 'signed', keyId, blob: blob.digest });
  }
  return found;
}

function created(d: Descriptor): string {
  return d.annotations?.['org.opencontainers.image.created'] ?? '';
}

function setOnce(found: Map<Digest, TrustedBlob>, blob: Descriptor, root: TrustedBlob['root']): void {
  const layer = blob.annotations?.[LAYER_DIGEST_ANNOTATION] as Digest | undefined;
  if (layer !== undefined && !found.has(layer)) found.set(layer, { blob, root });
}

/** The index blobs of artifact `digest`, which must name this image's manifest as its subject. */
async function artifactBlobs(
  registry: RegistryClient,
  image: ResolvedImage,
  digest: Digest,
  signal?: AbortSignal,
): Promise<Descriptor[]> {
  const ref = withDigest(image.ref, digest);
  const raw = await registry.fetchManifest(ref, signal);
  const parsed = parseManifest(raw.bytes, raw.mediaType, ref.toString());
  if (parsed.kind !== 'manifest' || parsed.manifest.subject?.digest !== image.manifestDigest) {
    throw new FormatError(`${ref.toString()}: not an index artifact of ${image.manifestDigest}`);
  }
  return parsed.manifest.layers.filter(
    (l) => l.mediaType === INDEX_BLOB_MEDIA_TYPE && l.annotations?.[LAYER_DIGEST_ANNOTATION] !== undefined,
  );
}

/** The id of a trusted key that signed `artifact` (cosign layout), or undefined. */
async function signedBy(
  registry: RegistryClient,
  image: ResolvedImage,
  artifact: Digest,
  keys: readonly TrustedKey[],
  signal?: AbortSignal,
): Promise<string | undefined> {
  const tagRef = withTag(image.ref, signatureTag(artifact));
  let raw;
  try {
    raw = await registry.fetchManifest(tagRef, signal);
  } catch {
    return undefined; // no signature tag: unsigned
  }
  const parsed = parseManifest(raw.bytes, raw.mediaType, tagRef.toString());
  if (parsed.kind !== 'manifest') return undefined;
  for (const layer of parsed.manifest.layers.slice(0, 16)) {
    const sig = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (layer.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || sig === undefined || layer.size > MAX_PAYLOAD_BYTES)
      continue;
    const payload = await registry.fetchBlob(image.ref, layer.digest, MAX_PAYLOAD_BYTES, signal);
    if (signedDigest(payload) !== artifact) continue;
    const key = verifyPayload(keys, payload, sig);
    if (key !== undefined) return key.id;
  }
  return undefined;
}
