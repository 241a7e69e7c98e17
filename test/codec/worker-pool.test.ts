// DecodePool: worker threads give the same verified bytes as the main thread, typed errors cross the thread
// boundary, a killed worker fails its job and is replaced, and this thread spends little CPU while 32 chunks decode.
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkJob, type ChunkJob } from '../../src/codec/chunk-job.js';
import { decodeChunk } from '../../src/codec/decode-chunk.js';
import { DecodePool, WORKER_RESOURCE_LIMITS } from '../../src/codec/worker-pool.js';
import { compressZstdFrame } from '../../src/codec/zstd-binding.js';
import { AbortedError, FormatError, IntegrityError, UnavailableError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { makeGzipLayer, spanOf, type GzipLayer } from './gzip-layer.js';
import { textPayload } from './payload.js';

let layer: GzipLayer;
/** Every job goes to a worker (no inline shortcut), two threads. */
const pool = new DecodePool({ workers: 2, inlineBelowBytes: 0 });

beforeAll(async () => {
  layer = await makeGzipLayer({ totalBytes: 34 * 1024 * 1024, compression: 'node' });
});
afterAll(() => pool.close());

let slow: { job: ChunkJob; compressed: Buffer } | undefined;

/** A gzip-member job big enough (64 MiB out) that a worker is surely still busy when the test kills it. */
function slowJob(): { job: ChunkJob; compressed: Buffer } {
  const data = Buffer.concat(Array.from({ length: 256 }, (_, i) => textPayload(256 * 1024, i % 16)));
  slow ??= {
    job: {
      label: 'slow job',
      codec: 'gzip-member',
      start: { gzip: true, bits: 0, window: undefined },
      skip: 0,
      size: data.length,
      digest: sha256(data),
    },
    compressed: gzipSync(data, { level: 1 }),
  };
  return { job: slow.job, compressed: Buffer.from(slow.compressed) };
}

describe('DecodePool', () => {
  it('decodes every chunk of a layer to exactly what the main thread decodes', async () => {
    const { index } = layer;
    expect(index.chunks.length).toBeGreaterThanOrEqual(32);
    const got = await Promise.all(
      index.chunks.map((_, i) => pool.decodeAndVerify(chunkJob(index, i), spanOf(layer, i))),
    );
    got.forEach((bytes, i) => {
      expect(bytes.equals(decodeChunk(index, i, spanOf(layer, i)))).toBe(true);
    });
    expect(pool.stats()).toMatchObject({ workers: 2, busy: 0, queued: 0, failed: 0, crashed: 0 });
    expect(pool.stats().completed).toBe(index.chunks.length);
  });

  it('leaves the caller its buffers: spans and index windows are copied, never detached', async () => {
    const i = layer.index.chunks.findIndex((c) => c.checkpoint > 0);
    const job = chunkJob(layer.index, i);
    const window = job.codec === 'zran' ? job.start.window : undefined;
    const span = spanOf(layer, i);
    await pool.decodeAndVerify(job, span);
    expect(span.length).toBeGreaterThan(0);
    expect(window?.length).toBeGreaterThan(0);
    const handed = spanOf(layer, i);
    await pool.decodeAndVerify(job, handed, { handOver: true });
    expect(handed.length).toBe(0); // transferred, as asked
  });

  it('decodes zstd-frame chunks too (the native zstd binding loads in worker threads)', async () => {
    const data = textPayload(600_000, 9);
    const frames = Buffer.concat([
      compressZstdFrame(data.subarray(0, 250_000)),
      compressZstdFrame(data.subarray(250_000)),
    ]);
    const slice = data.subarray(100_000, 500_000);
    const job: ChunkJob = {
      label: 'zstd job',
      codec: 'zstd-frame',
      skip: 100_000,
      size: slice.length,
      digest: sha256(slice),
    };
    expect((await pool.decodeAndVerify(job, frames)).equals(slice)).toBe(true);
  });

  it('returns a corrupt span as FormatError with its code and chunk name', async () => {
    const i = 5;
    const span = spanOf(layer, i);
    const truncated = Buffer.from(span.subarray(0, span.length >> 1));
    const err = await pool.decodeAndVerify(chunkJob(layer.index, i), truncated).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('FORMAT');
    expect((err as FormatError).message).toContain(`chunk ${i}:`);
    const garbage = Buffer.alloc(span.length, 0xff);
    const err2 = await pool.decodeAndVerify(chunkJob(layer.index, i), garbage).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(FormatError);
    expect((err2 as FormatError).message).toMatch(/corrupt deflate data|truncated|ended/);
  });

  it('returns bytes that do not match the digest as IntegrityError', async () => {
    const job = { ...chunkJob(layer.index, 3), digest: sha256('something else') };
    const err = await pool.decodeAndVerify(job, spanOf(layer, 3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as IntegrityError).code).toBe('INTEGRITY');
    expect((err as IntegrityError).message).toContain('decoded bytes hash to');
  });

  it('fails the job of a worker killed mid-job with a typed error, then recovers', async () => {
    const { job, compressed } = slowJob();
    const before = pool.stats().crashed;
    const pending = pool.decodeAndVerify(job, compressed);
    const running = pool.runningWorkersForTest();
    expect(running).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 20));
    await running[0]!.terminate();
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/slow job: decode worker exited/);
    expect(pool.stats().crashed).toBe(before + 1);
    const again = await pool.decodeAndVerify(chunkJob(layer.index, 7), spanOf(layer, 7));
    expect(again.equals(decodeChunk(layer.index, 7, spanOf(layer, 7)))).toBe(true);
    expect(pool.stats().workers).toBeLessThanOrEqual(2);
  });

  it('keeps the event loop mostly idle while 32 chunks decode (the work is on the workers)', async () => {
    const picked = layer.index.chunks
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => c.size >= 512 * 1024)
      .map(({ i }) => i)
      .slice(0, 32);
    expect(picked).toHaveLength(32);
    // CPU time of this thread, not wall-clock utilisation: on a loaded machine this thread waits for a core while
    // it works, which counts as busy loop time and stretches a utilisation figure with the load; the CPU it spends
    // does not. Compared with a control decoding the same chunks on this thread, in the same run.
    const cpuWhile = async (p: DecodePool): Promise<number> => {
      const spans = picked.map((i) => spanOf(layer, i));
      const before = process.threadCpuUsage();
      const out = await Promise.all(
        picked.map((i, k) => p.decodeAndVerify(chunkJob(layer.index, i), spans[k]!)),
      );
      const used = process.threadCpuUsage(before);
      expect(out.reduce((n, b) => n + b.length, 0)).toBeGreaterThan(28 * 1024 * 1024);
      return used.user + used.system;
    };
    // Each measured on its second round: worker start-up and first-call compilation are not the steady state.
    await cpuWhile(pool);
    const onWorkers = await cpuWhile(pool);
    const inline = new DecodePool({ workers: 1, inlineBelowBytes: Number.MAX_SAFE_INTEGER });
    await cpuWhile(inline);
    const onThisThread = await cpuWhile(inline);
    await inline.close();
    // Decoding on this thread would make the two equal; handing jobs out costs a small fraction of decoding them.
    expect(onWorkers).toBeLessThan(onThisThread * 0.5);
  });

  it('rejects queued jobs whose signal aborts, and everything once closed', async () => {
    const own = new DecodePool({ workers: 1, inlineBelowBytes: 0 });
    const { job, compressed } = slowJob();
    const first = own.decodeAndVerify(job, compressed);
    const ac = new AbortController();
    const queued = own.decodeAndVerify(chunkJob(layer.index, 1), spanOf(layer, 1), { signal: ac.signal });
    expect(own.stats().queued).toBe(1);
    ac.abort();
    await expect(queued).rejects.toBeInstanceOf(AbortedError);
    expect(own.stats().queued).toBe(0);
    await own.close();
    await expect(first).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(own.decodeAndVerify(chunkJob(layer.index, 1), spanOf(layer, 1))).rejects.toBeInstanceOf(
      UnavailableError,
    );
  });

  it("runs a reader's job before queued prefetch jobs, and a promoted prefetch job with the readers'", async () => {
    const own = new DecodePool({ workers: 1, inlineBelowBytes: 0 });
    try {
      const done: string[] = [];
      const track = (name: string, p: Promise<Buffer>): Promise<void> => p.then(() => void done.push(name));
      const { job, compressed } = slowJob();
      const busy = track('busy', own.decodeAndVerify(job, compressed)); // holds the only worker
      const prefetch = [2, 3, 4, 5].map((i) =>
        track(
          `prefetch ${i}`,
          own.decodeAndVerify(chunkJob(layer.index, i), spanOf(layer, i), { priority: 'prefetch' }),
        ),
      );
      const demand = track('demand 6', own.decodeAndVerify(chunkJob(layer.index, 6), spanOf(layer, 6)));
      own.promote(layer.index.chunks[4]!.digest);
      expect(own.stats()).toMatchObject({ queued: 5, queuedDemand: 2 });
      await Promise.all([busy, demand, ...prefetch]);
      expect(done).toEqual(['busy', 'demand 6', 'prefetch 4', 'prefetch 2', 'prefetch 3', 'prefetch 5']);
    } finally {
      await own.close();
    }
  });

  it('starts workers with heap limits', async () => {
    const { job, compressed } = slowJob();
    const pending = pool.decodeAndVerify(job, compressed);
    const limits = pool.runningWorkersForTest()[0]!.resourceLimits;
    expect(limits?.maxOldGenerationSizeMb).toBe(WORKER_RESOURCE_LIMITS.maxOldGenerationSizeMb);
    expect(limits?.maxYoungGenerationSizeMb).toBe(WORKER_RESOURCE_LIMITS.maxYoungGenerationSizeMb);
    await pending;
  });

  it('never keeps the process alive: a script that leaves its pool open exits', () => {
    const script = `
      import { gzipSync } from 'node:zlib';
      import { createHash } from 'node:crypto';
      import { DecodePool } from ${JSON.stringify(new URL('../../src/codec/worker-pool.ts', import.meta.url).href)};
      const data = Buffer.alloc(1 << 20, 'ferry ');
      const digest = 'sha256:' + createHash('sha256').update(data).digest('hex');
      const pool = new DecodePool({ workers: 2, inlineBelowBytes: 0 });
      const job = { label: 'x', codec: 'gzip-member', start: { gzip: true, bits: 0, window: undefined },
        skip: 0, size: data.length, digest };
      const out = await pool.decodeAndVerify(job, gzipSync(data));
      console.log('decoded', out.length, pool.stats().workers);
    `;
    const started = performance.now();
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      timeout: 20_000,
      encoding: 'utf8',
    });
    expect(stdout.trim()).toBe(`decoded ${1 << 20} 1`);
    expect(performance.now() - started).toBeLessThan(20_000);
  });
});
