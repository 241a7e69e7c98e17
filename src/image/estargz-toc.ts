// The eStargz table of contents (`stargz.index.json`): its types, the zod schema with size limits, and parsing.
// Field names and meanings are those of the eStargz format (containerd/stargz-snapshotter, `estargz/types.go`).
import { z } from 'zod';
import { FormatError } from '../errors.js';

/** Name of the tar entry holding the TOC JSON. */
export const TOC_TAR_NAME = 'stargz.index.json';
export const PREFETCH_LANDMARK = '.prefetch.landmark';
export const NO_PREFETCH_LANDMARK = '.no.prefetch.landmark';

/** Limits that keep a hostile TOC from exhausting memory; generous for real images. */
export const TOC_LIMITS = {
  maxJsonBytes: 256 * 1024 * 1024,
  maxEntries: 4_000_000,
  maxNameLength: 4096,
  maxXattrs: 256,
} as const;

// Offsets and sizes above 2^53 cannot be represented exactly; no real blob is that large.
const u64 = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const id = z.number().int().nonnegative().max(0xffff_ffff);
const digestString = z.string().regex(/^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/, 'not a digest');
const name = z.string().max(TOC_LIMITS.maxNameLength);

export const TOC_ENTRY_TYPES = [
  'dir',
  'reg',
  'symlink',
  'hardlink',
  'char',
  'block',
  'fifo',
  'chunk',
] as const;
export type TocEntryType = (typeof TOC_ENTRY_TYPES)[number];

export const tocEntrySchema = z.object({
  name,
  type: z.enum(TOC_ENTRY_TYPES),
  size: u64.optional(),
  modtime: z.string().max(64).optional(),
  linkName: name.optional(),
  // Go's tar mode is int64 and may carry type bits (040755); we mask with 0o7777 later.
  mode: u64.optional(),
  uid: id.optional(),
  gid: id.optional(),
  userName: z.string().max(256).optional(),
  groupName: z.string().max(256).optional(),
  offset: u64.optional(),
  innerOffset: u64.optional(),
  devMajor: id.optional(),
  devMinor: id.optional(),
  NumLink: z.number().int().optional(),
  xattrs: z
    .record(z.string().max(255), z.base64())
    .refine((x) => Object.keys(x).length <= TOC_LIMITS.maxXattrs, 'too many xattrs')
    .optional(),
  digest: digestString.optional(),
  chunkOffset: u64.optional(),
  chunkSize: u64.optional(),
  chunkDigest: digestString.optional(),
});

export const tocSchema = z.object({
  version: z.literal(1),
  entries: z.array(tocEntrySchema).max(TOC_LIMITS.maxEntries),
});

export type TocEntry = z.infer<typeof tocEntrySchema>;
export type EstargzToc = z.infer<typeof tocSchema>;

/**
 * Parses and validates TOC JSON bytes. `what` names the layer in error messages.
 * Throws FormatError for anything that is not a well-formed version-1 TOC within TOC_LIMITS.
 */
export function parseEstargzToc(json: Uint8Array, what: string): EstargzToc {
  if (json.length > TOC_LIMITS.maxJsonBytes) {
    throw new FormatError(
      `${what}: eStargz TOC is ${json.length} bytes, above the ${TOC_LIMITS.maxJsonBytes} limit`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.length).toString('utf8'));
  } catch (e) {
    throw new FormatError(`${what}: eStargz TOC is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  const parsed = tocSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join('.') : '';
    throw new FormatError(
      `${what}: invalid eStargz TOC at ${where || '(root)'}: ${issue?.message ?? 'unknown'}`,
    );
  }
  return parsed.data;
}
