// What a working set must fetch at least, given the image's published indexes: the distinct chunks its reads
// cover and their compressed spans, per kind of read. Set against what a mount really fetched, the difference
// is prefetch, read-ahead or refetching; set against the bytes read, it is the chunking's amplification.
import type { LayerIndex } from '../../src/image/layer-index.js';
import { chunksCovering } from '../../src/image/layer-index.js';
import { parseReference } from '../../src/image/reference.js';
import { withDigest } from '../../src/image/reference.js';
import { parseManifest, type Descriptor } from '../../src/image/manifest.js';
import type { Digest } from '../../src/image/digest.js';
import {
  INDEX_ARTIFACT_TYPE,
  INDEX_BLOB_MEDIA_TYPE,
  LAYER_DIGEST_ANNOTATION,
} from '../../src/index/publish.js';
import { deserializeIndex } from '../../src/index/serialize.js';
import type { RegistryClient } from '../../src/registry/client.js';
import type { ReadOp } from './image-1g.js';
import { fmtMB } from './report.js';

export interface PublishedIndexes {
  indexes: LayerIndex[];
  /** Bytes of the published index blobs (what a new node downloads at mount). */
  blobBytes: number;
}

export async function publishedIndexes(client: RegistryClient, refText: string): Promise<PublishedIndexes> {
  const image = await client.resolve(parseReference(refText));
  // The benchmark publishes the artifact itself, so it reads it without the trust checks a node makes.
  const found = new Map<Digest, Descriptor>();
  for (const a of await client.referrers(image.ref, image.manifestDigest, INDEX_ARTIFACT_TYPE)) {
    const raw = await client.fetchManifest(withDigest(image.ref, a.digest));
    const parsed = parseManifest(raw.bytes, raw.mediaType, a.digest);
    if (parsed.kind !== 'manifest') continue;
    for (const l of parsed.manifest.layers) {
      const layer = l.annotations?.[LAYER_DIGEST_ANNOTATION];
      // Windows blobs are read a window at a time with their chunks, not at mount.
      if (layer !== undefined && l.mediaType === INDEX_BLOB_MEDIA_TYPE) found.set(layer as Digest, l);
    }
  }
  const indexes: LayerIndex[] = [];
  let blobBytes = 0;
  for (const layer of image.manifest.layers) {
    const desc = found.get(layer.digest);
    if (desc === undefined) throw new Error(`no published index for layer ${layer.digest}`);
    blobBytes += desc.size;
    indexes.push(deserializeIndex(await client.fetchBlob(image.ref, desc.digest, 1 << 30), layer.digest));
  }
  return { indexes, blobBytes };
}

export interface KindDemand {
  ops: number;
  readBytes: number;
  chunks: number;
  uncompressedBytes: number;
  compressedBytes: number;
}

/** Distinct chunks (per layer) covered by `ops`, attributed to the kind that touched each first. */
export function demandOf(indexes: readonly LayerIndex[], ops: readonly ReadOp[]): Record<string, KindDemand> {
  const byPath = new Map<string, { index: LayerIndex; dataOffset: number; size: number }>();
  for (const index of indexes) {
    for (const e of index.entries) {
      if (e.type === 'file' && e.dataOffset !== undefined) {
        byPath.set(e.path, { index, dataOffset: e.dataOffset, size: e.size });
      }
    }
  }
  const seen = new Set<string>();
  const out: Record<string, KindDemand> = {};
  for (const op of ops) {
    const f = byPath.get(op.path);
    if (f === undefined) throw new Error(`working-set file ${op.path} is in no layer index`);
    const k = (out[op.kind] ??= {
      ops: 0,
      readBytes: 0,
      chunks: 0,
      uncompressedBytes: 0,
      compressedBytes: 0,
    });
    const length = Math.max(0, Math.min(op.length, f.size - op.offset));
    k.ops++;
    k.readBytes += length;
    for (const i of chunksCovering(f.index.chunks, f.dataOffset + op.offset, length)) {
      const key = `${f.index.layerDigest}/${i}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const c = f.index.chunks[i]!;
      k.chunks++;
      k.uncompressedBytes += c.size;
      k.compressedBytes += c.compressedEnd - c.compressedStart;
    }
  }
  return out;
}

export function describeDemand(d: Record<string, KindDemand>): string[] {
  const total = Object.values(d).reduce(
    (a, k) => ({ chunks: a.chunks + k.chunks, compressed: a.compressed + k.compressedBytes }),
    { chunks: 0, compressed: 0 },
  );
  return [
    `demand minimum: ${total.chunks} chunks, ${fmtMB(total.compressed)} compressed`,
    ...Object.entries(d).map(
      ([kind, k]) =>
        `  ${kind}: ${k.ops} reads of ${fmtMB(k.readBytes)} need ${k.chunks} chunks = ${fmtMB(k.uncompressedBytes)} ` +
        `uncompressed, ${fmtMB(k.compressedBytes)} compressed (${(k.compressedBytes / Math.max(1, k.readBytes)).toFixed(1)}x the bytes read)`,
    ),
  ];
}

export const demandTotal = (d: Record<string, KindDemand>): number =>
  Object.values(d).reduce((a, k) => a + k.compressedBytes, 0);
