// zstd:chunked layers: find the TOC through the layer annotations, fetch it with one Range read, verify it
// against the annotated checksum, and map it to a LayerIndex (codec 'zstd-frame', virtual coordinates).
import {
  AbortedError,
  FerryError,
  FormatError,
  IntegrityError,
  ResourceExhaustedError,
  toFerryError,
} from '../errors.js';
import { isDigest, sha256, type Digest } from '../image/digest.js';
import { TOC_LIMITS } from '../image/estargz-toc.js';
import { LAYER_INDEX_VERSION, type LayerIndex } from '../image/layer-index.js';
import type { BlobReader } from '../image/blob-reader.js';
import { decodeZstdExact } from '../codec/zstd-decode.js';
import { isHiddenTocName, mapEstargzEntries } from './estargz-entries.js';
import { validateIndex } from './validate-index.js';
import { mapZstdChunkedChunks, parseZstdChunkedToc, type ZstdChunkedToc } from './zstd-chunked-toc.js';

/** containers/storage's annotation keys; stargz-snapshotter's zstdchunked wrote the `io.containers.` ones. */
const PREFIXES = ['io.github.containers.zstd-chunked.', 'io.containers.zstd-chunked.'] as const;
export const MANIFEST_CHECKSUM_ANNOTATION = 'io.github.containers.zstd-chunked.manifest-checksum';
export const MANIFEST_POSITION_ANNOTATION = 'io.github.containers.zstd-chunked.manifest-position';
/** ManifestTypeCRFS: the only TOC type defined. */
const MANIFEST_TYPE_CRFS = 1;
/** A zstd skippable frame header (magic + LE32 size) precedes the compressed TOC. */
const SKIPPABLE_HEADER_BYTES = 8;

export interface ZstdChunkedManifestRef {
  /** sha256 of the compressed TOC bytes. */
  readonly checksum: Digest;
  readonly offset: number;
  readonly compressedBytes: number;
  readonly uncompressedBytes: number;
}

/** The TOC reference from a layer's annotations, or undefined when the layer is not zstd:chunked. */
export function zstdChunkedManifestRef(
  annotations: Readonly<Record<string, string>> | undefined,
  what: string,
): ZstdChunkedManifestRef | undefined {
  if (annotations === undefined) return undefined;
  for (const p of PREFIXES) {
    const checksum = annotations[`${p}manifest-checksum`];
    const position = annotations[`${p}manifest-position`];
    if (checksum === undefined || position === undefined) continue;
    const parts = position.split(':');
    const nums = parts.map((s) => (/^\d{1,16}$/.test(s) ? Number(s) : NaN));
    const [offset, compressedBytes, uncompressedBytes, type] = nums;
    if (
      parts.length !== 4 ||
      !nums.every(Number.isSafeInteger) ||
      offset === undefined ||
      compressedBytes === undefined ||
      uncompressedBytes === undefined
    ) {
      throw new FormatError(`${what}: bad zstd:chunked manifest-position ${JSON.stringify(position)}`);
    }
    if (type !== MANIFEST_TYPE_CRFS)
      throw new FormatError(`${what}: unknown zstd:chunked manifest type ${type}`);
    if (!isDigest(checksum))
      throw new FormatError(`${what}: bad zstd:chunked manifest-checksum ${JSON.stringify(checksum)}`);
    return { checksum, offset, compressedBytes, uncompressedBytes };
  }
  return undefined;
}

export interface ZstdChunkedOptions {
  readonly layerDigest: Digest;
  readonly mediaType: string;
  readonly blob: BlobReader;
  readonly manifest: ZstdChunkedManifestRef;
  readonly signal?: AbortSignal;
}

async function io<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (e) {
    throw toFerryError(e, 'UNAVAILABLE');
  }
}

/** Reads and verifies the TOC: one Range read of the compressed TOC, checked against the annotation. */
export async function readZstdChunkedToc(
  opts: ZstdChunkedOptions,
  what: string,
): Promise<{ toc: ZstdChunkedToc; size: number }> {
  const { blob, manifest: m, signal } = opts;
  if (m.uncompressedBytes > TOC_LIMITS.maxJsonBytes || m.compressedBytes > TOC_LIMITS.maxJsonBytes) {
    throw new ResourceExhaustedError(
      `${what}: zstd:chunked TOC of ${m.uncompressedBytes} bytes is above the limit`,
    );
  }
  const size = await io(() => blob.size(signal));
  if (m.offset < SKIPPABLE_HEADER_BYTES || m.offset + m.compressedBytes > size) {
    throw new FormatError(
      `${what}: zstd:chunked TOC [${m.offset}, +${m.compressedBytes}) lies outside the ${size}-byte blob`,
    );
  }
  const compressed = await io(() => blob.readRange(m.offset, m.offset + m.compressedBytes, signal));
  if (signal?.aborted === true)
    throw new AbortedError(`${what}: zstd:chunked read aborted`, { cause: signal.reason });
  const actual = sha256(compressed);
  if (actual !== m.checksum) {
    throw new IntegrityError(
      `${what}: zstd:chunked TOC checksum is ${actual}, the manifest annotates ${m.checksum}`,
    );
  }
  const json = decodeZstdExact(compressed, m.uncompressedBytes, `${what} zstd:chunked TOC`);
  return { toc: parseZstdChunkedToc(json, what), size };
}

/** The LayerIndex of a zstd:chunked layer, from its verified TOC. */
export async function buildZstdChunkedIndex(opts: ZstdChunkedOptions): Promise<LayerIndex> {
  const what = `layer ${opts.layerDigest}`;
  const startedMs = Date.now();
  try {
    const { toc, size } = await readZstdChunkedToc(opts, what);
    const dataEnd = opts.manifest.offset - SKIPPABLE_HEADER_BYTES;
    const hidden = (i: number): boolean => isHiddenTocName(toc.entries[i]!.name, what);
    const { chunks, files, uncompressedSize } = mapZstdChunkedChunks(toc, dataEnd, hidden, what);
    const index: LayerIndex = {
      version: LAYER_INDEX_VERSION,
      layerDigest: opts.layerDigest,
      mediaType: opts.mediaType,
      format: 'zstd-chunked',
      codec: 'zstd-frame',
      compressedSize: size,
      uncompressedSize,
      entries: mapEstargzEntries(toc, files, what),
      chunks,
      checkpoints: [],
      windows: [],
      build: {
        tool: 'ferry-zstd-chunked',
        createdAt: new Date().toISOString(),
        durationMs: Date.now() - startedMs,
      },
    };
    // A TOC is as untrusted as a published index: the same rules hold before anything is served from it.
    validateIndex(index, what);
    return index;
  } catch (e) {
    if (e instanceof FerryError) throw e;
    throw new FormatError(
      `${what}: zstd:chunked TOC unreadable: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
}
