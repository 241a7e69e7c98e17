// The one validator every layer index passes before use, whatever its source (a published artifact, a local
// store file, an eStargz or zstd:chunked TOC): codec and format agree with the media type, chunks and
// checkpoints are in range and bounded, entries are sane (validate-entries.ts). A FormatError names the rule.
import { FormatError } from '../errors.js';
import { INDEX_LIMITS as L, utf8Bytes } from '../image/index-limits.js';
import type { LayerCodec, LayerFormat, LayerIndex } from '../image/layer-index.js';
import { layerCompression } from '../image/manifest.js';
import { validateEntries } from './validate-entries.js';

/** The zran window: deflate's 32 KiB history. */
const WINDOW_BYTES = 32 * 1024;

const CODEC_OF: Record<LayerFormat, LayerCodec> = {
  tar: 'identity',
  gzip: 'zran',
  estargz: 'gzip-member',
  zstd: 'zstd-frame',
  'zstd-chunked': 'zstd-frame',
};
const FORMATS_OF = { none: ['tar'], gzip: ['gzip', 'estargz'], zstd: ['zstd', 'zstd-chunked'] } as const;

/** Throws a FormatError naming the first rule `index` breaks; `what` names the index in the message. */
export function validateIndex(index: LayerIndex, what = `layer index for ${index.layerDigest}`): void {
  validateHeader(index, what);
  validateCheckpoints(index, what);
  validateChunks(index, what);
  validateEntries(index, what);
}

function validateHeader(index: LayerIndex, what: string): void {
  const { tool, createdAt } = index.build;
  if ([index.mediaType, tool, createdAt].some((s) => utf8Bytes(s) > L.maxLabelBytes)) {
    throw new FormatError(
      `${what}: label cap: media type or build facts longer than ${L.maxLabelBytes} bytes`,
    );
  }
  if (!Number.isFinite(index.build.durationMs)) throw new FormatError(`${what}: build duration not finite`);
  const compression = layerCompression(index.mediaType);
  if (compression === undefined) {
    throw new FormatError(`${what}: media type ${JSON.stringify(index.mediaType)} is not a layer media type`);
  }
  if (!(FORMATS_OF[compression] as readonly string[]).includes(index.format)) {
    throw new FormatError(`${what}: format ${index.format} does not match media type ${index.mediaType}`);
  }
  if (CODEC_OF[index.format] !== index.codec) {
    throw new FormatError(`${what}: codec ${index.codec} does not match format ${index.format}`);
  }
  for (const [name, n] of [
    ['compressedSize', index.compressedSize],
    ['uncompressedSize', index.uncompressedSize],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 0) throw new FormatError(`${what}: ${name} ${n} out of range`);
  }
  if (index.codec === 'identity' && index.uncompressedSize !== index.compressedSize) {
    throw new FormatError(`${what}: identity layer with uncompressedSize ≠ compressedSize`);
  }
  if (index.chunks.length > L.maxChunks) {
    throw new FormatError(`${what}: chunk cap: ${index.chunks.length} chunks, at most ${L.maxChunks}`);
  }
  if (index.checkpoints.length > L.maxCheckpoints) {
    throw new FormatError(
      `${what}: checkpoint cap: ${index.checkpoints.length}, at most ${L.maxCheckpoints}`,
    );
  }
}

/**
 * zran only: one window per checkpoint, in order (inline, or as refs into a windows blob, never both; refs inside
 * the blob); each checkpoint after the previous one, inside the blob.
 */
function validateCheckpoints(index: LayerIndex, what: string): void {
  const { checkpoints, windows } = index;
  const apart = index.windowsBlob;
  if (index.codec !== 'zran') {
    if (checkpoints.length > 0 || windows.length > 0 || apart !== undefined)
      throw new FormatError(`${what}: checkpoints or windows on a ${index.codec} index`);
    return;
  }
  if (apart !== undefined && windows.length > 0)
    throw new FormatError(`${what}: windows both inline and in a windows blob`);
  const sizes = apart !== undefined ? apart.refs.map((r) => r.size) : windows.map((w) => w.length);
  if (sizes.length !== checkpoints.length) {
    throw new FormatError(`${what}: ${sizes.length} windows for ${checkpoints.length} checkpoints`);
  }
  for (const [i, r] of (apart?.refs ?? []).entries()) {
    const inside = Number.isSafeInteger(r.offset) && Number.isSafeInteger(r.length) && r.offset >= 0;
    if (!inside || r.length < 0 || r.offset + r.length > apart!.size || r.length > 2 * WINDOW_BYTES)
      throw new FormatError(`${what}: window ${i} outside its windows blob`);
  }
  let prev: { u: number; c: number } | undefined;
  checkpoints.forEach((cp, i) => {
    const bad = (rule: string): FormatError => new FormatError(`${what}: ${rule}: checkpoint ${i}`);
    if (cp.window !== i) throw bad(`window index ${cp.window} is not the checkpoint's own`);
    if (
      !Number.isSafeInteger(cp.compressedOffset) ||
      cp.compressedOffset < 0 ||
      cp.compressedOffset > index.compressedSize ||
      !Number.isSafeInteger(cp.uncompressedOffset) ||
      cp.uncompressedOffset < 0 ||
      cp.uncompressedOffset > index.uncompressedSize
    ) {
      throw bad('offset outside the layer');
    }
    if (!Number.isInteger(cp.bits) || cp.bits < 0 || cp.bits > 7) throw bad(`bits ${cp.bits} out of range`);
    if (cp.bits > 0 && cp.compressedOffset === 0) throw bad('bits before the blob start');
    if (cp.memberStart && cp.bits !== 0) throw bad('member start with bits');
    if (i === 0 && (cp.uncompressedOffset !== 0 || !cp.memberStart)) throw bad('first checkpoint not at 0');
    if (prev !== undefined && (cp.uncompressedOffset <= prev.u || cp.compressedOffset < prev.c)) {
      throw bad('checkpoints not sorted');
    }
    prev = { u: cp.uncompressedOffset, c: cp.compressedOffset };
    const want = cp.memberStart ? 0 : Math.min(cp.uncompressedOffset, WINDOW_BYTES);
    const have = sizes[i];
    if (have !== want) throw bad(`window of ${have} bytes, expected ${want}`);
  });
}

function validateChunks(index: LayerIndex, what: string): void {
  let end = 0;
  index.chunks.forEach((c, i) => {
    const bad = (rule: string): FormatError => new FormatError(`${what}: ${rule}: chunk ${i}`);
    for (const n of [c.offset, c.size, c.compressedStart, c.compressedEnd, c.skip]) {
      if (!Number.isSafeInteger(n) || n < 0) throw bad('offset or size out of range');
    }
    if (c.size === 0) throw bad('empty chunk');
    if (c.size > L.maxChunkBytes) throw bad(`chunk of ${c.size} bytes above ${L.maxChunkBytes}`);
    if (c.offset < end) throw bad('chunks not sorted and disjoint');
    end = c.offset + c.size;
    if (end > index.uncompressedSize) throw bad(`chunk ends past the ${index.uncompressedSize}-byte layer`);
    if (c.compressedEnd <= c.compressedStart || c.compressedEnd > index.compressedSize) {
      throw bad(
        `span [${c.compressedStart}, ${c.compressedEnd}) empty or outside the ${index.compressedSize}-byte blob`,
      );
    }
    const span = c.compressedEnd - c.compressedStart;
    if (span > L.spanFactor * (c.skip + c.size) + L.spanSlackBytes) {
      throw bad(`span of ${span} bytes too large for ${c.skip} + ${c.size} decoded bytes`);
    }
    checkCodec(index, c, bad);
  });
}

function checkCodec(
  index: LayerIndex,
  c: LayerIndex['chunks'][number],
  bad: (rule: string) => FormatError,
): void {
  if (index.codec !== 'zran' && c.checkpoint !== -1) throw bad('checkpoint on a non-zran chunk');
  switch (index.codec) {
    case 'identity':
      if (c.skip !== 0 || c.compressedStart !== c.offset || c.compressedEnd !== c.offset + c.size) {
        throw bad('identity span is not the chunk itself');
      }
      return;
    case 'gzip-member':
      if (c.skip > L.maxMemberSkipBytes) throw bad(`skip of ${c.skip} bytes into a gzip member`);
      return;
    case 'zstd-frame':
      // A plain zstd layer may be one frame: a chunk then decodes from the layer start.
      if (c.skip > index.uncompressedSize) throw bad(`skip of ${c.skip} bytes past the layer`);
      return;
    case 'zran': {
      const cp = index.checkpoints[c.checkpoint];
      if (cp === undefined) throw bad(`checkpoint ${c.checkpoint} missing`);
      if (cp.uncompressedOffset > c.offset || c.skip !== c.offset - cp.uncompressedOffset) {
        throw bad(`skip ${c.skip} does not lead from checkpoint ${c.checkpoint} to the chunk`);
      }
      const start = cp.memberStart || cp.bits === 0 ? cp.compressedOffset : cp.compressedOffset - 1;
      if (c.compressedStart !== start) throw bad(`span does not start at checkpoint ${c.checkpoint}`);
    }
  }
}
