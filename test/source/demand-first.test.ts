// A reader never queues behind a prefetch: with a large prefetch filling the node's source, a demand read's range
// request reaches a real (slow) HTTP blob server before any further prefetch request and before any prefetch
// answer frees a slot; the prefetch's queued fetches are served after it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { DecodePool } from '../../src/codec/worker-pool.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { parseReference } from '../../src/image/reference.js';
import { buildIndexFromStream } from '../../src/index/build-stream.js';
import { silentLogger } from '../../src/log.js';
import { Prefetcher } from '../../src/prefetch/prefetcher.js';
import { RegistryClient } from '../../src/registry/client.js';
import { ChunkService } from '../../src/source/chunk-service.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import { makeLayer } from '../index/layer-fixture.js';

const TAR = 'application/vnd.oci.image.layer.v1.tar';
const DELAY_MS = 150;
const layer = makeLayer({ smallFiles: 200, seed: 11 });
const blob = new MemoryBlobReader(layer.tar);

/** A blob endpoint answering Range GETs after DELAY_MS, logging each request's first byte in arrival order. */
interface SlowBlobServer {
  server: Server;
  starts: number[];
  inFlight: number;
  completed: number;
  /** Called on every request arrival. */
  onRequest: ((start: number) => void) | undefined;
}

let slow: SlowBlobServer;
let index: LayerIndex;
const pool = new DecodePool({ workers: 1 });

beforeAll(async () => {
  index = await buildIndexFromStream({
    layerDigest: blob.digest,
    mediaType: TAR,
    blob,
    chunkSizeBytes: 64 * 1024,
  });
  const s: SlowBlobServer = {
    server: createServer(),
    starts: [],
    inFlight: 0,
    completed: 0,
    onRequest: undefined,
  };
  s.server.on('request', (req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m === null || !(req.url ?? '').includes('/blobs/')) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), layer.tar.length - 1);
    s.starts.push(start);
    s.inFlight++;
    s.onRequest?.(start);
    setTimeout(() => {
      s.inFlight--;
      s.completed++;
      res.writeHead(206, {
        'content-range': `bytes ${start}-${end}/${layer.tar.length}`,
        'content-length': String(end - start + 1),
        'content-type': 'application/octet-stream',
      });
      res.end(layer.tar.subarray(start, end + 1));
    }, DELAY_MS);
  });
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  slow = s;
});

afterAll(async () => {
  slow.server.closeAllConnections();
  await new Promise((r) => slow.server.close(r));
  await pool.close();
});

describe('demand reads go first', () => {
  it("a demand read issued during a large prefetch is fetched before the prefetch's queued chunks", async () => {
    expect(index.chunks.length).toBeGreaterThanOrEqual(20);
    const registry = new RegistryClient({
      log: silentLogger(),
      requestTimeoutMs: 30_000,
      maxConcurrencyPerHost: 16,
      retries: 0,
    });
    const service = new ChunkService({
      store: new MemoryChunkStore({ maxBytes: 256 << 20 }),
      registry,
      pool,
      concurrency: 4,
      log: silentLogger(),
    });
    const port = (slow.server.address() as AddressInfo).port;
    service.register(parseReference(`127.0.0.1:${port}/t/layer:1`), [index]);
    try {
      const last = index.chunks.length - 1;
      const items = index.chunks.slice(0, last).map((c, chunk) => ({
        req: { index, chunk, priority: 'prefetch' as const },
        digest: c.digest,
        size: c.size,
        phase: 'trace' as const,
      }));
      const prefetcher = new Prefetcher({ source: service.source, concurrency: 8, log: silentLogger() });
      const firstArrived = new Promise<void>((r) => (slow.onRequest = () => r()));
      const prefetching = prefetcher.run(items);
      await firstArrived;
      await new Promise((r) => setTimeout(r, DELAY_MS / 3)); // every slot prefetch may take is taken now
      expect(slow.completed).toBe(0);
      const seenBefore = slow.starts.length;
      const target = index.chunks[last]!;
      const demandArrived = new Promise<{ completed: number; at: number }>((r) => {
        slow.onRequest = (start) => {
          if (start === target.compressedStart) r({ completed: slow.completed, at: slow.starts.length - 1 });
        };
      });
      const demand = service.source.fetch({ index, chunk: last, priority: 'demand' });
      const arrived = await demandArrived;
      // It did not wait for a prefetch answer to free a slot, and nothing queued before it went out first.
      expect(arrived.completed).toBe(0);
      expect(arrived.at).toBe(seenBefore);
      const bytes = await demand;
      expect(bytes.equals(layer.tar.subarray(target.offset, target.offset + target.size))).toBe(true);
      const stats = await prefetching;
      expect(stats.fetched).toBe(items.length);
      // The prefetch still had queued fetches when the reader came: they went to the server after it.
      expect(slow.starts.length - 1 - arrived.at).toBeGreaterThan(0);
    } finally {
      slow.onRequest = undefined;
      await registry.close();
    }
  });
});
