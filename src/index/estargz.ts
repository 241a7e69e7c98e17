// eStargz layers: detect the footer, fetch and verify the TOC with two Range reads, and map it to a LayerIndex.
// Chunks decode as gzip members (codec 'gzip-member'); every payload must carry a chunkDigest.
import { promisify } from 'node:util';
import { gunzip, constants as zlibConstants } from 'node:zlib';
import {
  AbortedError,
  FerryError,
  FormatError,
  IntegrityError,
  ResourceExhaustedError,
  toFerryError,
} from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';
import {
  NO_PREFETCH_LANDMARK,
  PREFETCH_LANDMARK,
  TOC_LIMITS,
  parseEstargzToc,
  type EstargzToc,
} from '../image/estargz-toc.js';
import { LAYER_INDEX_VERSION, type LayerIndex } from '../image/layer-index.js';
import type { BlobReader } from '../image/blob-reader.js';
import { mapEstargzChunks } from './estargz-chunks.js';
import { isHiddenTocName, mapEstargzEntries } from './estargz-entries.js';
import { FOOTER_SIZE, LEGACY_FOOTER_SIZE, parseEstargzFooter, type EstargzFooter } from './estargz-footer.js';
import { extractTocJson } from './estargz-tar.js';
import { validateIndex } from './validate-index.js';

const gunzipAsync = promisify(gunzip);

/** Largest compressed TOC member we fetch; a TOC this big would not fit the JSON limit anyway. */
export const MAX_TOC_COMPRESSED_BYTES = 128 * 1024 * 1024;

export interface EstargzOptions {
  readonly layerDigest: Digest;
  readonly mediaType: string;
  readonly blob: BlobReader;
  /** From the layer annotation `containerd.io/snapshot/stargz/toc.digest`; verified when given. */
  readonly tocDigest?: Digest;
  readonly signal?: AbortSignal;
}

export interface EstargzLoad {
  readonly index: LayerIndex;
  readonly toc: EstargzToc;
  /** sha256 of the TOC JSON as read (equals the annotation when one was given). */
  readonly tocDigest: Digest;
  readonly tocOffset: number;
  readonly footerSize: number;
  /** See estargzPrefetchEnd. */
  readonly prefetchEnd: number | undefined;
}

function checkAbort(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(`${what}: eStargz read aborted`, { cause: signal.reason });
}

/** Blob I/O keeps the reader's typed errors; anything untyped from it counts as unavailable, not corrupt. */
async function io<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (e) {
    throw toFerryError(e, 'UNAVAILABLE');
  }
}

async function readFooter(
  blob: BlobReader,
  signal: AbortSignal | undefined,
): Promise<{ size: number; footer: EstargzFooter | undefined }> {
  const size = await io(() => blob.size(signal));
  if (size < LEGACY_FOOTER_SIZE) return { size, footer: undefined };
  const tail = await io(() => blob.readRange(Math.max(0, size - FOOTER_SIZE), size, signal));
  if (tail.length !== Math.min(size, FOOTER_SIZE)) return { size, footer: undefined };
  return { size, footer: parseEstargzFooter(tail, size) };
}

/** True when the blob ends with an eStargz (51-byte) or legacy stargz (47-byte) footer. */
export async function isEstargz(blob: BlobReader, signal?: AbortSignal): Promise<boolean> {
  return (await readFooter(blob, signal)).footer !== undefined;
}

/**
 * Where prefetch should stop: the compressed offset of `.prefetch.landmark` (prefetch [0, end)), 0 when the
 * layer carries `.no.prefetch.landmark` (do not prefetch), undefined when it has neither.
 */
export function estargzPrefetchEnd(toc: EstargzToc): number | undefined {
  for (const e of toc.entries) {
    if (e.type !== 'reg') continue;
    // A cheap strip, not normalizeLayerPath: this must not throw on names the mapping would reject.
    const path = e.name.replace(/^(\.?\/)+/, '');
    if (path === PREFETCH_LANDMARK) return e.offset ?? 0;
    if (path === NO_PREFETCH_LANDMARK) return 0;
  }
  return undefined;
}

async function readToc(
  opts: EstargzOptions,
  what: string,
): Promise<Omit<EstargzLoad, 'index' | 'prefetchEnd'> & { size: number }> {
  const { blob, signal } = opts;
  const { size, footer } = await readFooter(blob, signal);
  if (!footer)
    throw new FormatError(`${what}: not an eStargz blob (no stargz footer in its last ${FOOTER_SIZE} bytes)`);
  const end = size - footer.footerSize;
  if (end - footer.tocOffset > MAX_TOC_COMPRESSED_BYTES) {
    throw new ResourceExhaustedError(
      `${what}: eStargz TOC member is ${end - footer.tocOffset} bytes, above the limit`,
    );
  }
  const member = await io(() => blob.readRange(footer.tocOffset, end, signal));
  checkAbort(signal, what);
  let tar: Buffer;
  try {
    // Sync flush tolerates a member cut short; the tar reader below then reports what is missing.
    tar = await gunzipAsync(member, {
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
      maxOutputLength: TOC_LIMITS.maxJsonBytes + 64 * 1024,
    });
  } catch (e) {
    throw new FormatError(
      `${what}: eStargz TOC member at ${footer.tocOffset} is not valid gzip: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const json = extractTocJson(tar, what);
  const tocDigest = sha256(json);
  if (opts.tocDigest !== undefined && opts.tocDigest !== tocDigest) {
    throw new IntegrityError(
      `${what}: eStargz TOC digest is ${tocDigest}, the manifest annotates ${opts.tocDigest}`,
    );
  }
  return {
    toc: parseEstargzToc(json, what),
    tocDigest,
    tocOffset: footer.tocOffset,
    footerSize: footer.footerSize,
    size,
  };
}

/** Reads, verifies and maps an eStargz layer's TOC; also returns the TOC and its prefetch landmark. */
export async function loadEstargz(opts: EstargzOptions): Promise<EstargzLoad> {
  const what = `layer ${opts.layerDigest}`;
  const startedMs = Date.now();
  checkAbort(opts.signal, what);
  try {
    const { toc, tocDigest, tocOffset, footerSize, size } = await readToc(opts, what);
    const hidden = (i: number): boolean => isHiddenTocName(toc.entries[i]!.name, what);
    const { chunks, files, uncompressedSize } = mapEstargzChunks(toc, tocOffset, hidden, what);
    const entries = mapEstargzEntries(toc, files, what);
    const index: LayerIndex = {
      version: LAYER_INDEX_VERSION,
      layerDigest: opts.layerDigest,
      mediaType: opts.mediaType,
      format: 'estargz',
      codec: 'gzip-member',
      compressedSize: size,
      uncompressedSize,
      entries,
      chunks,
      checkpoints: [],
      windows: [],
      build: {
        tool: 'ferry-estargz',
        createdAt: new Date().toISOString(),
        durationMs: Date.now() - startedMs,
      },
    };
    // A TOC is as untrusted as a published index: the same rules hold before anything is served from it.
    validateIndex(index, what);
    return { index, toc, tocDigest, tocOffset, footerSize, prefetchEnd: estargzPrefetchEnd(toc) };
  } catch (e) {
    if (e instanceof FerryError) throw e;
    // Only parsing runs outside io(): an untyped throw there means the TOC broke an assumption.
    throw new FormatError(`${what}: eStargz TOC unreadable: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
}

/** The LayerIndex of an eStargz layer, read from its TOC (two Range reads: footer, then TOC member). */
export async function buildEstargzIndex(opts: EstargzOptions): Promise<LayerIndex> {
  return (await loadEstargz(opts)).index;
}
