// Shape of a serialized layer index header (JSON), validated on load so a damaged or foreign index is a
// FormatError rather than a crash deep inside the reader.
import { z } from 'zod';
import { FormatError } from '../errors.js';
import { isDigest, type Digest } from '../image/digest.js';
import type { Entry } from '../image/layer-index.js';

const n = z.number().int().nonnegative();
const digest = z.string().refine(isDigest);

const entry = z.object({
  path: z.string(),
  type: z.enum(['file', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo', 'whiteout']),
  mode: n,
  uid: n,
  gid: n,
  size: n,
  mtimeMs: z.number(),
  linkTarget: z.string().optional(),
  devMajor: n.optional(),
  devMinor: n.optional(),
  xattrs: z.record(z.string(), z.string()).optional(),
  opaque: z.boolean().optional(),
  dataOffset: n.optional(),
  digest: digest.optional(),
});

const schema = z.object({
  version: z.literal(1),
  layerDigest: digest,
  mediaType: z.string(),
  format: z.enum(['tar', 'gzip', 'estargz', 'zstd', 'zstd-chunked']),
  codec: z.enum(['identity', 'zran', 'gzip-member', 'zstd-frame']),
  compressedSize: n,
  uncompressedSize: n,
  entries: z.array(entry),
  chunks: z.array(z.tuple([digest, n, n, n, n, z.number().int().min(-1), n])),
  checkpoints: z.array(
    z.tuple([n, z.number().int().min(0).max(7), n, n, z.union([z.literal(0), z.literal(1)])]),
  ),
  windowSizes: z.array(n),
  /** Windows kept apart (file version 2): [offset, length, digest, inflated size] per window. */
  windowsBlob: z
    .object({ digest, size: n, refs: z.array(z.tuple([n, n, digest, n.max(32 * 1024)])) })
    .optional(),
  build: z.object({ tool: z.string(), createdAt: z.string(), durationMs: z.number() }),
});

export type IndexJson = Omit<z.input<typeof schema>, 'entries' | 'layerDigest' | 'chunks' | 'windowsBlob'> & {
  layerDigest: Digest;
  entries: readonly Entry[];
  chunks: Array<[Digest, number, number, number, number, number, number]>;
  windowsBlob?: { digest: Digest; size: number; refs: Array<[number, number, Digest, number]> };
};

export type ParsedIndexJson = Omit<z.output<typeof schema>, 'entries'> & { entries: Entry[] };

export function parseIndexJson(v: unknown, what: string): ParsedIndexJson {
  const r = schema.safeParse(v);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new FormatError(
      `${what}: invalid header (${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'unknown'})`,
    );
  }
  return r.data as ParsedIndexJson;
}
