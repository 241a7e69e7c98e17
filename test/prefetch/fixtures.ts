// Small synthetic layer indexes and chunk sources for prefetch tests (no registry, no FUSE).
import { sha256, type Digest } from '../../src/image/digest.js';
import type { Entry, LayerIndex } from '../../src/image/layer-index.js';
import type { ChunkRequest, ChunkSource } from '../../src/source/chunk-source.js';

/** A layer of `chunks` chunks of `chunkSize` bytes; each file i of `files` spans the given byte range. */
export function fakeIndex(
  name: string,
  chunks: number,
  chunkSize = 1000,
  files: Array<{ path: string; offset: number; size: number }> = [],
): LayerIndex {
  const entries: Entry[] = [
    { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
    ...files.map((f): Entry => ({
      path: f.path,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: f.size,
      mtimeMs: 0,
      dataOffset: f.offset,
    })),
  ];
  return {
    version: 1,
    layerDigest: sha256(`layer ${name}`),
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    format: 'tar',
    codec: 'identity',
    compressedSize: chunks * chunkSize,
    uncompressedSize: chunks * chunkSize,
    entries,
    chunks: Array.from({ length: chunks }, (_, i) => ({
      digest: sha256(`${name} chunk ${i}`),
      offset: i * chunkSize,
      size: chunkSize,
      compressedStart: i * chunkSize,
      compressedEnd: (i + 1) * chunkSize,
      checkpoint: -1,
      skip: 0,
    })),
    checkpoints: [],
    windows: [],
    build: { tool: 'test', createdAt: '2024-01-01T00:00:00Z', durationMs: 0 },
  };
}

export const MANIFEST: Digest = sha256('manifest');

/** Answers every fetch after `delayMs`, tracking concurrency and order. */
export class CountingSource implements ChunkSource {
  readonly order: Array<{ layer: Digest; chunk: number; priority: string }> = [];
  active = 0;
  maxActive = 0;

  constructor(private readonly delayMs = 1) {}

  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    this.order.push({ layer: req.index.layerDigest, chunk: req.chunk, priority: req.priority });
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          clearTimeout(t);
          reject(new Error('aborted'));
        };
        const t = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, this.delayMs);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      return Buffer.alloc(req.index.chunks[req.chunk]!.size);
    } finally {
      this.active--;
    }
  }
}
