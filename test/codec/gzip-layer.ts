// A generated gzip tar layer with its real zran index (build-stream), for pool, differential and bench runs:
// mostly text-like files with some incompressible ones, so chunks hit bit-offset and byte-aligned checkpoints.
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { gnuGzip, randomBytesSeeded, textPayload } from './payload.js';

export interface GzipLayer {
  tar: Buffer;
  gz: Buffer;
  index: LayerIndex;
  blob: MemoryBlobReader;
}

export interface GzipLayerOptions {
  /** Uncompressed file bytes in the layer (roughly the tar size). */
  totalBytes: number;
  /** GNU gzip level, or 'node' for zlib.gzipSync, or 'members' for one gzip member per ~fileBytes. */
  compression: number | 'node' | 'members';
  fileBytes?: number;
  seed?: number;
  chunkSizeBytes?: number;
  spanBytes?: number;
}

export async function tarOf(files: ReadonlyArray<[string, Buffer]>): Promise<Buffer> {
  const pack = tarStream.pack();
  const parts: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (b: unknown) => parts.push(b as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const [name, data] of files) pack.entry({ name, size: data.length, mtime: new Date(0) }, data);
  pack.finalize();
  await done;
  return Buffer.concat(parts);
}

export async function makeGzipLayer(opts: GzipLayerOptions): Promise<GzipLayer> {
  const seed = opts.seed ?? 1;
  const fileBytes = opts.fileBytes ?? 3 * 1024 * 1024 + 12_345;
  const files: Array<[string, Buffer]> = [];
  for (let i = 0, left = opts.totalBytes; left > 0; i++, left -= fileBytes) {
    const n = Math.min(left, fileBytes);
    const data = i % 5 === 3 ? randomBytesSeeded(n, seed * 100 + i) : textPayload(n, seed * 100 + i);
    files.push([`dir${i % 3}/file${i}.bin`, data]);
  }
  const tar = await tarOf(files);
  let gz: Buffer;
  if (opts.compression === 'node') gz = gzipSync(tar);
  else if (opts.compression === 'members') {
    const members: Buffer[] = [];
    for (let i = 0; i < tar.length; i += fileBytes) members.push(gzipSync(tar.subarray(i, i + fileBytes)));
    gz = Buffer.concat(members);
  } else gz = gnuGzip(tar, opts.compression);
  const blob = new MemoryBlobReader(gz);
  const index = await buildIndexFromStream({
    layerDigest: blob.digest,
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    blob,
    ...(opts.chunkSizeBytes !== undefined ? { chunkSizeBytes: opts.chunkSizeBytes } : {}),
    ...(opts.spanBytes !== undefined ? { spanBytes: opts.spanBytes } : {}),
  });
  return { tar, gz, index, blob };
}

/** The compressed span of chunk `i`, copied so a pool may take ownership of it. */
export function spanOf(layer: GzipLayer, i: number): Buffer {
  const c = layer.index.chunks[i]!;
  return Buffer.from(layer.gz.subarray(c.compressedStart, c.compressedEnd));
}
