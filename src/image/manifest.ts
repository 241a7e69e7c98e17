// OCI / Docker v2 manifests and indexes: media types, zod schemas, and the checked parse of a registry response.
import { z } from 'zod';
import { FormatError, ResourceExhaustedError } from '../errors.js';
import { isDigest, type Digest } from './digest.js';

export const MediaType = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeign: 'application/vnd.docker.image.rootfs.foreign.diff.tar',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Manifests larger than this are refused (the distribution spec lets registries refuse above 4 MiB too). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(', ');

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.ociIndex, MediaType.dockerManifestList]);
const MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaType.ociManifest, MediaType.dockerManifest]);
const SCHEMA1_TYPES: ReadonlySet<string> = new Set([MediaType.dockerSchema1, MediaType.dockerSchema1Signed]);

export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** containerd's rule: any `application/vnd.oci.image.layer.` type plus the four Docker layer types. */
export function isLayerMediaType(mediaType: string): boolean {
  return (
    mediaType.startsWith('application/vnd.oci.image.layer.') ||
    mediaType === MediaType.dockerLayer ||
    mediaType === MediaType.dockerLayerGzip ||
    mediaType === MediaType.dockerLayerForeign ||
    mediaType === MediaType.dockerLayerForeignGzip
  );
}

/** Compression of a layer by its media type; undefined for types that are not layers. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  if (!isLayerMediaType(mediaType)) return undefined;
  if (mediaType.endsWith('+zstd')) return 'zstd';
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.gzip')) return 'gzip';
  return 'none';
}

const DigestSchema = z
  .string()
  .refine(isDigest, { message: 'invalid digest' })
  .transform((s): Digest => s);
const Annotations = z.record(z.string(), z.string());

export const PlatformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});

export const DescriptorSchema = z.object({
  mediaType: z.string().min(1),
  digest: DigestSchema,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: Annotations.optional(),
  data: z.string().optional(),
  platform: PlatformSchema.optional(),
  artifactType: z.string().optional(),
});

export const ImageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: Annotations.optional(),
});

export const ImageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: Annotations.optional(),
});

export type Platform = z.infer<typeof PlatformSchema>;
export type Descriptor = z.infer<typeof DescriptorSchema>;
export type ImageManifest = z.infer<typeof ImageManifestSchema>;
export type ImageIndex = z.infer<typeof ImageIndexSchema>;

export type ParsedManifest =
  { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

/** The media type without parameters, lowercased; undefined for a missing or empty header. */
export function baseMediaType(contentType: string | undefined): string | undefined {
  const t = contentType?.split(';')[0]?.trim().toLowerCase();
  return t === undefined || t === '' ? undefined : t;
}

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

export function isManifestMediaType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType);
}

/**
 * Parses a manifest or index as served for `where` (a reference, for messages). The Content-Type decides the
 * kind when it is a known type; a `mediaType` field that disagrees with it is refused, as the spec asks.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, where: string): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ResourceExhaustedError(
      `manifest for ${where} is ${bytes.length} bytes, over the ${MAX_MANIFEST_BYTES} limit`,
    );
  }
  const type = baseMediaType(contentType);
  if (type !== undefined && SCHEMA1_TYPES.has(type)) throw schema1(where);
  const text = bytes.toString('utf8');
  const head = text.trimStart().slice(0, 1);
  if (type === 'text/html' || head === '<') {
    throw new FormatError(
      `registry returned HTML instead of a manifest for ${where} (wrong host or a proxy login page?)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(`manifest for ${where} is not JSON (Content-Type ${type ?? 'none'})`, { cause: e });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FormatError(`manifest for ${where} is not a JSON object`);
  }
  const obj = json as Record<string, unknown>;
  if (obj['schemaVersion'] === 1) throw schema1(where);
  const field = typeof obj['mediaType'] === 'string' ? obj['mediaType'] : undefined;
  const known = type !== undefined && (INDEX_TYPES.has(type) || MANIFEST_TYPES.has(type));
  if (known && field !== undefined && field !== type) {
    throw new FormatError(
      `manifest for ${where}: mediaType field ${field} disagrees with Content-Type ${type}`,
    );
  }
  const declared = known ? type : field;
  let kind: 'index' | 'manifest';
  if (declared !== undefined && INDEX_TYPES.has(declared)) kind = 'index';
  else if (declared !== undefined && MANIFEST_TYPES.has(declared)) kind = 'manifest';
  else if (declared !== undefined && SCHEMA1_TYPES.has(declared)) throw schema1(where);
  else if (Array.isArray(obj['manifests'])) kind = 'index';
  else if (typeof obj['config'] === 'object' && Array.isArray(obj['layers'])) kind = 'manifest';
  else throw new FormatError(`manifest for ${where} has unsupported media type ${declared ?? 'none'}`);

  if (kind === 'index') {
    const r = ImageIndexSchema.safeParse(json);
    if (!r.success) throw invalid(where, 'index', r.error);
    return { kind, index: r.data };
  }
  const r = ImageManifestSchema.safeParse(json);
  if (!r.success) throw invalid(where, 'manifest', r.error);
  return { kind, manifest: r.data };
}

function schema1(where: string): FormatError {
  return new FormatError(
    `manifest for ${where} is Docker schema 1, which is unsupported (re-push the image with a current client)`,
  );
}

function invalid(where: string, what: string, error: z.ZodError): FormatError {
  const issues = error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  return new FormatError(`invalid ${what} for ${where}: ${issues}`, { cause: error });
}
