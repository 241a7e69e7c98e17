// OCI referrers: the /referrers API, and the `<alg>-<hex>` tag-schema fallback (read and maintained on push)
// for registries without it, such as docker-registry 2.8.
import { FormatError } from '../errors.js';
import { digestAlgorithm, digestHex, type Digest } from '../image/digest.js';
import { MediaType, parseManifest, type Descriptor, type ImageIndex } from '../image/manifest.js';
import type { ImageReference } from '../image/reference.js';
import { pushManifest } from './push.js';
import { statusError, type RegistrySession } from './session.js';

const MAX_INDEX_BYTES = 4 * 1024 * 1024;

/** The referrers tag schema: `sha256:abc…` → `sha256-abc…` (alg ≤ 32 chars, hex ≤ 64, odd chars → `-`). */
export function referrersTag(subject: Digest): string {
  const clean = (s: string): string => s.replace(/[^a-zA-Z0-9._-]/g, '-');
  return `${clean(digestAlgorithm(subject)).slice(0, 32)}-${clean(digestHex(subject)).slice(0, 64)}`;
}

export async function listReferrers(
  session: RegistrySession,
  ref: ImageReference,
  subject: Digest,
  artifactType: string | undefined,
  signal?: AbortSignal,
): Promise<Descriptor[]> {
  const where = `${ref.registry}/${ref.repository}@${subject}`;
  const what = `referrers of ${where}`;
  const { res } = await session.call({
    ref,
    method: 'GET',
    path: `referrers/${subject}`,
    ...(artifactType !== undefined ? { query: { artifactType } } : {}),
    headers: { accept: MediaType.ociIndex },
    what,
    signal,
  });
  let index: ImageIndex | undefined;
  let filtered = false;
  if (res.status === 200) {
    filtered = /artifactType/i.test(res.headers['oci-filters-applied'] ?? '');
    index = asIndex(await res.body.read(MAX_INDEX_BYTES), res.headers['content-type'], what);
  } else if (res.status === 404) {
    res.body.dump();
    index = await readTagIndex(session, ref, subject, signal);
  } else {
    throw await statusError(res, what);
  }
  const list = index?.manifests ?? [];
  return artifactType === undefined || filtered ? list : list.filter((d) => d.artifactType === artifactType);
}

/** Adds `descriptor` to the subject's fallback tag index (read, add if absent, push). Not atomic across writers. */
export async function addToReferrersTag(
  session: RegistrySession,
  ref: ImageReference,
  subject: Digest,
  descriptor: Descriptor,
  signal?: AbortSignal,
): Promise<void> {
  const current = await readTagIndex(session, ref, subject, signal);
  const manifests = current?.manifests ?? [];
  if (manifests.some((d) => d.digest === descriptor.digest)) return;
  const next: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [...manifests, descriptor],
  };
  const bytes = Buffer.from(JSON.stringify(next));
  await pushManifest(session, ref, referrersTag(subject), bytes, MediaType.ociIndex, signal);
}

async function readTagIndex(
  session: RegistrySession,
  ref: ImageReference,
  subject: Digest,
  signal?: AbortSignal,
): Promise<ImageIndex | undefined> {
  const tag = referrersTag(subject);
  const what = `referrers tag ${tag} of ${ref.registry}/${ref.repository}`;
  const { res } = await session.call({
    ref,
    method: 'GET',
    path: `manifests/${tag}`,
    headers: { accept: MediaType.ociIndex },
    what,
    signal,
  });
  if (res.status === 404) {
    res.body.dump();
    return undefined;
  }
  if (res.status !== 200) throw await statusError(res, what);
  return asIndex(await res.body.read(MAX_INDEX_BYTES), res.headers['content-type'], what);
}

function asIndex(bytes: Buffer, contentType: string | undefined, what: string): ImageIndex {
  const parsed = parseManifest(bytes, contentType, what);
  if (parsed.kind !== 'index') throw new FormatError(`${what}: expected an image index, got a manifest`);
  return parsed.index;
}
