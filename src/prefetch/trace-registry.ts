// Sharing traces through the registry: a MergedTrace as an OCI artifact (artifactType
// application/vnd.ferry.trace.v1) whose subject is the image manifest, found again through the referrers API.
import { FormatError } from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';
import { MediaType, parseManifest, type Descriptor } from '../image/manifest.js';
import { withDigest } from '../image/reference.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { parseMergedTrace, serializeMergedTrace, type MergedTrace } from './trace.js';

export const TRACE_ARTIFACT_TYPE = 'application/vnd.ferry.trace.v1';
export const TRACE_BLOB_MEDIA_TYPE = 'application/vnd.ferry.trace.v1+json';
export const WORKLOAD_ANNOTATION = 'dev.ferry.trace.workload';
const CREATED = 'org.opencontainers.image.created';
const EMPTY_JSON = Buffer.from('{}');
const MAX_TRACE_BLOB_BYTES = 64 * 1024 * 1024;

/** Pushes `trace` as an artifact referring to `image`; returns the artifact manifest's digest. */
export async function pushTrace(
  registry: RegistryClient,
  image: ResolvedImage,
  trace: MergedTrace,
  signal?: AbortSignal,
): Promise<Digest> {
  if (trace.manifestDigest !== image.manifestDigest) {
    throw new FormatError(
      `trace is for ${trace.manifestDigest}, not ${image.ref.toString()} (${image.manifestDigest})`,
    );
  }
  const config = await registry.pushBlob(image.ref, EMPTY_JSON, signal);
  const blob = await registry.pushBlob(image.ref, serializeMergedTrace(trace), signal);
  const annotations: Record<string, string> = { [CREATED]: new Date().toISOString() };
  if (trace.workloadKey !== undefined) annotations[WORKLOAD_ANNOTATION] = trace.workloadKey;
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: TRACE_ARTIFACT_TYPE,
    config: { mediaType: MediaType.ociEmpty, digest: config.digest, size: config.size },
    layers: [{ mediaType: TRACE_BLOB_MEDIA_TYPE, digest: blob.digest, size: blob.size }],
    subject: { mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifestBytes.length },
    annotations,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return registry.pushManifest(image.ref, sha256(bytes), bytes, MediaType.ociManifest, signal);
}

/**
 * The newest trace published for `image` (and workload), or undefined when there is none or it is unusable:
 * a bad artifact is logged once and costs only the prefetch, never the mount.
 */
export async function pullTrace(
  registry: RegistryClient,
  image: ResolvedImage,
  log: Logger,
  workloadKey?: string,
  signal?: AbortSignal,
): Promise<MergedTrace | undefined> {
  let referrers: Descriptor[];
  try {
    referrers = await registry.referrers(image.ref, image.manifestDigest, TRACE_ARTIFACT_TYPE, signal);
  } catch (e) {
    signal?.throwIfAborted();
    log.warn({ err: e, ref: image.ref.toString() }, 'cannot list referrers; no shared trace');
    return undefined;
  }
  const candidates = referrers
    .filter(
      (d) => d.artifactType === TRACE_ARTIFACT_TYPE && d.annotations?.[WORKLOAD_ANNOTATION] === workloadKey,
    )
    .sort((a, b) => (b.annotations?.[CREATED] ?? '').localeCompare(a.annotations?.[CREATED] ?? ''));
  for (const desc of candidates) {
    try {
      const ref = withDigest(image.ref, desc.digest);
      const raw = await registry.fetchManifest(ref, signal);
      const parsed = parseManifest(raw.bytes, raw.mediaType, ref.toString());
      if (parsed.kind !== 'manifest' || parsed.manifest.subject?.digest !== image.manifestDigest) continue;
      const layer = parsed.manifest.layers.find((l) => l.mediaType === TRACE_BLOB_MEDIA_TYPE);
      if (layer === undefined || layer.size > MAX_TRACE_BLOB_BYTES) continue;
      const bytes = await registry.fetchBlob(image.ref, layer.digest, MAX_TRACE_BLOB_BYTES, signal);
      const trace = parseMergedTrace(bytes, `trace artifact ${desc.digest}`);
      if (trace.manifestDigest !== image.manifestDigest || trace.workloadKey !== workloadKey) continue;
      return trace;
    } catch (e) {
      signal?.throwIfAborted();
      log.warn({ err: e, artifact: desc.digest }, 'published trace unusable; trying the next');
    }
  }
  return undefined;
}
