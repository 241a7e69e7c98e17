// Each gzip chunk gets a restart point just before it, so fetching a chunk inflates little beyond the chunk.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { fetchChunkFromOrigin } from '../../src/source/origin.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { pseudoRandom, pseudoText } from '../helpers/corpus.js';
import tarStream from 'tar-stream';

async function tarOf(files: Array<[string, Buffer]>): Promise<Buffer> {
  const pack = tarStream.pack();
  const parts: Buffer[] = [];
  pack.on('data', (b: unknown) => parts.push(b as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const [name, content] of files) pack.entry({ name, size: content.length }, content);
  pack.finalize();
  await done;
  return Buffer.concat(parts);
}

describe('per-chunk zran checkpoints', () => {
  it('start each chunk within a deflate block of a checkpoint, even with sparse periodic spans', async () => {
    const files: Array<[string, Buffer]> = [
      ['big-text', pseudoText(6 << 20, 1)],
      ['big-random', pseudoRandom(3 << 20, 2)],
      ...Array.from({ length: 800 }, (_, i): [string, Buffer] => [`small/${i}`, pseudoText(3000 + i, i)]),
    ];
    const blob = new MemoryBlobReader(gzipSync(await tarOf(files), { level: 9 }));
    const index = await buildIndexFromStream({
      layerDigest: blob.digest,
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob,
      chunkSizeBytes: 512 * 1024,
      spanBytes: 64 << 20, // periodic checkpoints effectively off: only per-chunk ones remain
    });
    expect(index.chunks.length).toBeGreaterThan(15);
    const skips = index.chunks.map((c) => c.skip).sort((a, b) => a - b);
    expect(skips[skips.length >> 1]!).toBeLessThan(128 * 1024);
    expect(skips[skips.length - 1]!).toBeLessThan(512 * 1024);
    // Fetching every chunk reads about the blob once, not a span's worth extra per chunk.
    for (let i = 0; i < index.chunks.length; i++) await fetchChunkFromOrigin(index, i, blob);
    expect(blob.bytesRead).toBeLessThan(1.5 * (await blob.size()));
  });
});
