// PartReadSource: a part of a chunk held on disk is one positioned read of the store (no whole-chunk fetch),
// a part of a chunk not held is sliced from the whole chunk, which the stack below then stores.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DiskChunkStore } from '../../src/chunks/disk-chunk-store.js';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { TieredChunkStore } from '../../src/chunks/tiered-chunk-store.js';
import { silentLogger } from '../../src/log.js';
import { fetchChunkPart, type ChunkRequest } from '../../src/source/chunk-source.js';
import { PartReadSource } from '../../src/source/part-read.js';
import { StoreThroughSource } from '../../src/source/store-through.js';
import { buildIdentityLayer } from '../helpers/identity-layer.js';
import { ManualSource } from './fakes.js';

const layer = buildIdentityLayer(
  Array.from({ length: 4 }, (_, i) => ({ path: `f${i}`, content: Buffer.alloc(3000, i + 1) })),
  { chunkSizeBytes: 1024 },
);
const { index, blob } = layer;
const req = (chunk: number): ChunkRequest => ({ index, chunk, priority: 'demand' });
const bytesOf = (chunk: number): Buffer => {
  const c = index.chunks[chunk]!;
  return blob.subarray(c.offset, c.offset + c.size);
};

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function stack(verifyReads: boolean): Promise<{
  source: PartReadSource;
  origin: ManualSource;
  memory: MemoryChunkStore;
  disk: DiskChunkStore;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-part-'));
  dirs.push(dir);
  const disk = new DiskChunkStore({ dir, maxBytes: 1 << 20, log: silentLogger(), verifyReads });
  await disk.open();
  // A memory tier too small for any chunk: every hit below is the disk's.
  const memory = new MemoryChunkStore({ maxBytes: 16 });
  const store = new TieredChunkStore({ memory, disk });
  const origin = new ManualSource();
  const source = new PartReadSource({
    store,
    next: new StoreThroughSource({ store, next: origin, log: silentLogger() }),
  });
  return { source, origin, memory, disk };
}

describe('PartReadSource', () => {
  it('reads a part of a stored chunk from disk by position, never fetching the chunk', async () => {
    const { source, origin, disk } = await stack(false);
    const c = index.chunks[1]!;
    expect(c.size).toBeGreaterThan(200);
    // Not stored yet: the whole chunk is fetched (and stored by store-through), the part sliced from it.
    const first = fetchChunkPart(source, req(1), 100, 200);
    await vi.waitFor(() => expect(origin.calls).toHaveLength(1)); // after the disk store's miss
    origin.calls[0]!.resolve(bytesOf(1));
    expect((await first).equals(bytesOf(1).subarray(100, 200))).toBe(true);
    expect(source.partsFromStore).toBe(0);
    // Store-through writes behind the reader: the positioned reads below are of the file once it is there.
    await vi.waitFor(() => expect(disk.has(c.digest)).toBe(true));

    const hitsBefore = disk.stats().hits;
    expect((await fetchChunkPart(source, req(1), 0, 50)).equals(bytesOf(1).subarray(0, 50))).toBe(true);
    expect((await fetchChunkPart(source, req(1), 50, c.size)).equals(bytesOf(1).subarray(50))).toBe(true);
    expect(origin.calls).toHaveLength(1);
    expect(source.partsFromStore).toBe(2);
    expect(disk.stats().hits - hitsBefore).toBe(2);
    expect(disk.stats().hitBytes).toBe(c.size);
  });

  it('a whole chunk, or any part with verifyReads on, is a whole (verified) read of the store', async () => {
    const { source, origin, disk } = await stack(true);
    const c = index.chunks[2]!;
    await disk.put(c.digest, bytesOf(2));
    expect((await fetchChunkPart(source, req(2), 10, 20)).equals(bytesOf(2).subarray(10, 20))).toBe(true);
    expect((await fetchChunkPart(source, req(2), 0, c.size)).equals(bytesOf(2))).toBe(true);
    expect(source.partsFromStore).toBe(0);
    expect(origin.calls).toHaveLength(0);
    expect(disk.stats().hitBytes).toBe(2 * c.size);
  });
});
