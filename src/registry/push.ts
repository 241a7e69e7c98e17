// Uploads: monolithic blob push (HEAD to skip what exists, POST then PUT ?digest=) and manifest PUT.
import { FormatError, IntegrityError } from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';
import type { Descriptor } from '../image/manifest.js';
import type { ImageReference } from '../image/reference.js';
import { statusError, type RegistrySession } from './session.js';

export async function pushBlob(
  session: RegistrySession,
  ref: ImageReference,
  data: Buffer,
  signal?: AbortSignal,
): Promise<Descriptor> {
  const digest = sha256(data);
  const descriptor: Descriptor = { mediaType: 'application/octet-stream', digest, size: data.length };
  const where = `${ref.registry}/${ref.repository}`;
  const what = `push of blob ${digest} to ${where}`;
  const head = await session.call({ ref, method: 'HEAD', path: `blobs/${digest}`, push: true, what, signal });
  head.res.body.dump();
  if (head.res.status === 200) return descriptor;
  if (head.res.status !== 404) throw await statusError(head.res, what);

  const start = await session.call({ ref, method: 'POST', path: 'blobs/uploads/', push: true, what, signal });
  if (start.res.status !== 202) throw await statusError(start.res, what);
  start.res.body.dump();
  const location = start.res.headers['location'];
  if (location === undefined) throw new FormatError(`${what}: upload started without a Location`);
  const target = new URL(location, start.url);
  target.searchParams.set('digest', digest);
  const put = await session.call({
    ref,
    method: 'PUT',
    path: target,
    push: true,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    body: data,
    what,
    signal,
  });
  if (put.res.status !== 201) throw await statusError(put.res, what);
  put.res.body.dump();
  checkEcho(put.res.headers['docker-content-digest'], digest, what);
  return descriptor;
}

export async function pushManifest(
  session: RegistrySession,
  ref: ImageReference,
  reference: string,
  bytes: Buffer,
  mediaType: string,
  signal?: AbortSignal,
): Promise<{ digest: Digest; subjectAccepted: boolean }> {
  const digest = sha256(bytes);
  const what = `push of manifest ${reference} to ${ref.registry}/${ref.repository}`;
  if (reference.includes(':') && reference !== digest) {
    throw new IntegrityError(`${what}: manifest bytes hash to ${digest}`);
  }
  const { res } = await session.call({
    ref,
    method: 'PUT',
    path: `manifests/${reference}`,
    push: true,
    headers: { 'content-type': mediaType },
    body: bytes,
    what,
    signal,
  });
  if (res.status !== 201 && res.status !== 200) throw await statusError(res, what);
  res.body.dump();
  checkEcho(res.headers['docker-content-digest'], digest, what);
  return { digest, subjectAccepted: res.headers['oci-subject'] !== undefined };
}

function checkEcho(echoed: string | undefined, digest: Digest, what: string): void {
  if (echoed !== undefined && echoed.startsWith('sha256:') && echoed !== digest) {
    throw new IntegrityError(`${what}: registry stored ${echoed}, expected ${digest}`);
  }
}
