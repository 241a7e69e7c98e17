// In-memory layers built from file contents (real binaries of this machine or synthetic bytes), with a chunk
// source serving their bytes and recording what was fetched; for start-set tests (no registry, no FUSE).
import { sha256 } from '../../src/image/digest.js';
import type { Entry, LayerIndex } from '../../src/image/layer-index.js';
import type { ChunkRequest, ChunkSource } from '../../src/source/chunk-source.js';

export type FileSpec =
  | { path: string; data: Buffer }
  | { path: string; symlink: string }
  | { path: string; hardlink: string }
  | { path: string; whiteout: true }
  | { path: string; dir: true; opaque?: boolean };

const base = { mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 } as const;

/** A layer laying the files' contents end to end (in the order given), cut into `chunkSize` chunks. */
export function fileLayer(
  name: string,
  files: readonly FileSpec[],
  chunkSize = 64 * 1024,
): { index: LayerIndex; data: Buffer } {
  const parts: Buffer[] = [];
  let offset = 0;
  const entries: Entry[] = [{ path: '', type: 'dir', size: 0, ...base }];
  for (const f of files) {
    if ('data' in f) {
      entries.push({ path: f.path, type: 'file', size: f.data.length, dataOffset: offset, ...base });
      parts.push(f.data);
      offset += f.data.length;
    } else if ('symlink' in f)
      entries.push({ path: f.path, type: 'symlink', size: 0, linkTarget: f.symlink, ...base });
    else if ('hardlink' in f)
      entries.push({ path: f.path, type: 'hardlink', size: 0, linkTarget: f.hardlink, ...base });
    else if ('whiteout' in f) entries.push({ path: f.path, type: 'whiteout', size: 0, ...base });
    else entries.push({ path: f.path, type: 'dir', size: 0, ...(f.opaque ? { opaque: true } : {}), ...base });
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const data = Buffer.concat(parts);
  const chunks = [];
  for (let at = 0; at < data.length; at += chunkSize) {
    const size = Math.min(chunkSize, data.length - at);
    chunks.push({
      digest: sha256(data.subarray(at, at + size)),
      offset: at,
      size,
      compressedStart: at,
      compressedEnd: at + size,
      checkpoint: -1,
      skip: 0,
    });
  }
  const index: LayerIndex = {
    version: 1,
    layerDigest: sha256(`layer ${name}`),
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    format: 'tar',
    codec: 'identity',
    compressedSize: data.length,
    uncompressedSize: data.length,
    entries,
    chunks,
    checkpoints: [],
    windows: [],
    build: { tool: 'test', createdAt: '2024-01-01T00:00:00Z', durationMs: 0 },
  };
  return { index, data };
}

/** Serves fileLayer bytes; records every fetch. */
export class LayerBytesSource implements ChunkSource {
  readonly fetched: ChunkRequest[] = [];
  private readonly data = new Map<LayerIndex, Buffer>();

  constructor(layers: ReadonlyArray<{ index: LayerIndex; data: Buffer }>) {
    for (const l of layers) this.data.set(l.index, l.data);
  }

  fetch(req: ChunkRequest): Promise<Buffer> {
    this.fetched.push(req);
    const c = req.index.chunks[req.chunk]!;
    return Promise.resolve(this.data.get(req.index)!.subarray(c.offset, c.offset + c.size));
  }
}
