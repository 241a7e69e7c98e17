// Benchmark 2: random 4 KiB reads from a ~200 MiB gzip layer in a real docker-registry on loopback, through
// FaultProxy (which counts blob bytes): cold (fetchChunkFromOrigin per read, no cache) and warm (the composed
// source over a memory+disk chunk store), with p50/p99 latency, bytes fetched per read and amplification.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DiskChunkStore } from '../src/chunks/disk-chunk-store.js';
import { MemoryChunkStore } from '../src/chunks/memory-chunk-store.js';
import { TieredChunkStore } from '../src/chunks/tiered-chunk-store.js';
import type { BlobReader } from '../src/image/blob-reader.js';
import { sha256 } from '../src/image/digest.js';
import { chunksCovering, type LayerIndex } from '../src/image/layer-index.js';
import { MediaType } from '../src/image/manifest.js';
import { parseReference } from '../src/image/reference.js';
import { buildIndexFromStream } from '../src/index/build-stream.js';
import { silentLogger } from '../src/log.js';
import { composeSource } from '../src/source/compose.js';
import { fetchChunkFromOrigin } from '../src/source/origin.js';
import { MemoryBlobReader } from '../test/helpers/memory-blob.js';
import { pushGzipImage, startBenchRegistry } from './lib/bench-registry.js';
import { layer200 } from './lib/layer200.js';
import { elapsed, emitResults, fmtMB, fmtMs, parseArgs, percentile, say } from './lib/report.js';

const READ_BYTES = 4096;

interface Read {
  /** Offset in the layer's uncompressed space. */
  at: number;
  length: number;
}

/** `count` reads at uniformly random file bytes (so weighted by file size), 4 KiB-aligned within the file. */
function planReads(index: LayerIndex, count: number, seed: number): Read[] {
  const files = index.entries.filter((e) => e.type === 'file' && e.size > 0 && e.dataOffset !== undefined);
  const ends: number[] = [];
  let total = 0;
  for (const f of files) ends.push((total += f.size));
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ 0x5bd1e995) | 1; // distinct seeds, distinct streams
  const rand = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  return Array.from({ length: count }, () => {
    const u = Math.floor(rand() * total);
    let lo = 0;
    let hi = ends.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    const f = files[lo]!;
    const inFile = Math.floor((u - (ends[lo]! - f.size)) / READ_BYTES) * READ_BYTES;
    return { at: f.dataOffset! + inFile, length: Math.min(READ_BYTES, f.size - inFile) };
  });
}

/** Times the registry Range reads underneath, to split a read's latency into fetch and decode+verify. */
class TimedBlob implements BlobReader {
  fetchMs = 0;
  constructor(private readonly inner: BlobReader) {}
  get digest() {
    return this.inner.digest;
  }
  size(signal?: AbortSignal) {
    return this.inner.size(signal);
  }
  async readRange(start: number, end: number, signal?: AbortSignal) {
    const t0 = performance.now();
    try {
      return await this.inner.readRange(start, end, signal);
    } finally {
      this.fetchMs += elapsed(t0);
    }
  }
  stream(signal?: AbortSignal) {
    return this.inner.stream(signal);
  }
}

interface PassResult {
  latencies: number[];
  fetchedBytes: number[];
  chunks: number;
  fetchMs: number;
  totalMs: number;
}

async function main(): Promise<void> {
  const args = parseArgs();
  const count = args.quick ? 60 : 200;
  say(`# random-reads${args.quick ? ' (--quick)' : ''}: ${count} random 4 KiB reads`);
  const layer = await layer200(args);
  const gz = readFileSync(layer.path);
  const tar = gunzipSync(gz);
  const bench = await startBenchRegistry();
  const cacheDir = mkdtempSync(join(tmpdir(), 'ferry-bench-chunks-'));
  try {
    const pushed = await pushGzipImage(bench, 'bench/random:1', [layer.path]);
    const layerDigest = sha256(gz);
    const index = await buildIndexFromStream({
      layerDigest,
      mediaType: MediaType.ociLayerGzip,
      blob: new MemoryBlobReader(gz),
    });
    const spans = index.chunks.map((c) => c.compressedEnd - c.compressedStart);
    say(
      `layer ${fmtMB(gz.length)} gzip / ${fmtMB(index.uncompressedSize)} tar (${fmtMB(pushed.compressedBytes)} pushed); ` +
        `${index.chunks.length} chunks; compressed span per chunk p50 ${fmtMB(percentile(spans, 50))}, ` +
        `max ${fmtMB(Math.max(...spans))}`,
    );
    const ref = parseReference(`${bench.proxy.host}/bench/random:1`);
    const blob = new TimedBlob(bench.client.blobReader(ref, layerDigest, gz.length));
    // Connection setup and the registry's first answer are not part of a read's latency.
    await blob.readRange(0, 1);
    blob.fetchMs = 0;
    const reads = planReads(index, count, 0x5eed);
    const check = (r: Read, got: Buffer) => {
      if (!got.equals(tar.subarray(r.at, r.at + r.length)))
        throw new Error(`read at ${r.at}+${r.length} returned wrong bytes`);
    };

    async function pass(readChunk: (i: number) => Promise<Buffer>): Promise<PassResult> {
      const out: PassResult = { latencies: [], fetchedBytes: [], chunks: 0, fetchMs: 0, totalMs: 0 };
      const fetch0 = blob.fetchMs;
      const t0 = performance.now();
      for (const r of reads) {
        const before = bench.proxy.stats.blobBytes;
        const t = performance.now();
        const covering = chunksCovering(index.chunks, r.at, r.length);
        const parts = await Promise.all(covering.map(readChunk));
        const whole = Buffer.concat(parts);
        const got = whole.subarray(r.at - index.chunks[covering[0]!]!.offset).subarray(0, r.length);
        out.latencies.push(elapsed(t));
        out.fetchedBytes.push(bench.proxy.stats.blobBytes - before);
        out.chunks += covering.length;
        check(r, got);
      }
      out.totalMs = elapsed(t0);
      out.fetchMs = blob.fetchMs - fetch0;
      return out;
    }

    const cold = await pass((i) => fetchChunkFromOrigin(index, i, blob));
    // The product's shape: a small memory tier over a disk tier (ferry's test config: 64 MiB + 2 GiB).
    const disk = new DiskChunkStore({ dir: cacheDir, maxBytes: 2 * 1024 ** 3, log: silentLogger() });
    await disk.open();
    const store = new TieredChunkStore({
      memory: new MemoryChunkStore({ maxBytes: 64 * 1024 * 1024 }),
      disk,
    });
    const composed = composeSource({
      store,
      origin: { blobFor: () => blob, fetch: fetchChunkFromOrigin },
      concurrency: 8,
      log: silentLogger(),
    });
    const viaSource = (i: number) => composed.source.fetch({ index, chunk: i, priority: 'demand' });
    const filling = await pass(viaSource);
    const warm = await pass(viaSource);
    const tiers = composed.stats();

    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const describe = (name: string, p: PassResult) => {
      const bytes = sum(p.fetchedBytes);
      say(
        `${name}: p50 ${fmtMs(percentile(p.latencies, 50))}, p99 ${fmtMs(percentile(p.latencies, 99))}, ` +
          `max ${fmtMs(Math.max(...p.latencies))}; ${p.chunks} chunks; fetched ${fmtMB(bytes)} ` +
          `(${fmtMB(bytes / reads.length)}/read, amplification ${(bytes / reads.length / READ_BYTES).toFixed(0)}x); ` +
          `time in registry reads ${fmtMs(p.fetchMs)} of ${fmtMs(p.totalMs)} ` +
          `(decode+verify+rest ${fmtMs(p.totalMs - p.fetchMs)})`,
      );
    };
    describe('cold, fetchChunkFromOrigin', cold);
    describe('composed source, empty cache', filling);
    describe('composed source, warm cache', warm);
    say(
      `warm pass served from: memory ${tiers.memory.chunks} chunks, disk ${tiers.disk.chunks}; ` +
        `origin total ${tiers.origin.chunks} chunks`,
    );
    const perRead = sum(cold.fetchedBytes) / reads.length;
    emitResults(
      'random-reads',
      [
        {
          metric: 'random 4 KiB read p50, cold (loopback)',
          ferry: fmtMs(percentile(cold.latencies, 50)),
          baseline: '',
          ratio: '',
          target: '',
        },
        {
          metric: 'random 4 KiB read p99, cold (loopback)',
          ferry: fmtMs(percentile(cold.latencies, 99)),
          baseline: '',
          ratio: '',
          target: '',
        },
        {
          metric: 'bytes fetched per cold 4 KiB read',
          ferry: fmtMB(perRead),
          baseline: `${fmtMB(gz.length)} (whole blob)`,
          ratio: `${(perRead / gz.length).toFixed(4)}x`,
          target: '',
        },
        {
          metric: 'read amplification (fetched / 4 KiB)',
          ferry: `${(perRead / READ_BYTES).toFixed(0)}x`,
          baseline: '',
          ratio: '',
          target: '',
        },
        {
          metric: 'random 4 KiB read p50 / p99, warm cache',
          ferry: `${fmtMs(percentile(warm.latencies, 50))} / ${fmtMs(percentile(warm.latencies, 99))}`,
          baseline: '',
          ratio: '',
          target: '',
        },
      ],
      [
        `cold share of time in registry Range reads: ${((100 * cold.fetchMs) / cold.totalMs).toFixed(0)}%, ` +
          'the rest is inflate from the checkpoint + SHA-256 of the chunk',
      ],
    );
  } finally {
    await bench.close();
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

await main();
