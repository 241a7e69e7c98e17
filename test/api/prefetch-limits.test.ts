// What a hint client cannot ask of a node, over real gRPC: more bytes than the node's budget, an unbounded or
// odd workload_key, an over-long image_ref, or (with `[prefetch] hintRegistries`) an image on another registry.
import { status } from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prefetchClient, PrefetchApiError, type PrefetchClient } from '../../src/api/prefetch-client.js';
import { DaemonPrefetch } from '../../src/daemon/prefetch.js';
import { PrefetchServer } from '../../src/api/prefetch-server.js';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import { validateConfig } from '../../src/config/load.js';
import { DecodePool } from '../../src/codec/worker-pool.js';
import { ChunkService } from '../../src/source/chunk-service.js';
import { IndexProvider } from '../../src/index/provider.js';
import { IndexStore } from '../../src/index/index-store.js';
import { silentLogger } from '../../src/log.js';
import type { HintSpec } from '../../src/prefetch/hint-job.js';
import { HintQueue } from '../../src/prefetch/hint-queue.js';
import { RegistryClient } from '../../src/registry/client.js';

const REG = 'registry.test:5000';
const NODE_BUDGET = 1024 * 1024;

/** Budgets the runner was started with, by image. */
const started = new Map<string, HintSpec>();
let server: PrefetchServer;
let jobs: HintQueue;
let c: PrefetchClient;

beforeAll(async () => {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'ferry-pflim-')), 'prefetch.sock');
  jobs = new HintQueue({
    runner: (run) => {
      started.set(run.spec.imageRef, { ...run.spec });
      return Promise.resolve();
    },
    maxQueued: 16,
    concurrency: 2,
    retainMs: 60_000,
    nodeBudgetBytes: NODE_BUDGET,
    hintRegistries: [REG],
    log: silentLogger(),
  });
  server = new PrefetchServer({ jobs, socketPath, log: silentLogger() });
  await server.start();
  c = await prefetchClient({ socketPath });
});

afterAll(async () => {
  c?.close();
  await server?.stop(1000);
  await jobs?.close();
});

async function failure(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PrefetchApiError) return { code: e.grpcCode, message: e.message };
    throw e;
  }
  return { code: status.OK, message: '' };
}

async function budgetOf(image: string, byteBudget?: number): Promise<number | undefined> {
  const h = await c.hint({
    image_ref: image,
    ...(byteBudget !== undefined ? { byte_budget: byteBudget } : {}),
  });
  expect((await c.watch(h.job_id)).phase).toBe('DONE');
  return started.get(image)?.budgetBytes;
}

describe('hint limits', () => {
  it("caps byte_budget at the node's budget; less may be asked, none means the node's", async () => {
    expect(await budgetOf(`${REG}/big:1`, 50 * 1024 * 1024 * 1024)).toBe(NODE_BUDGET);
    expect(await budgetOf(`${REG}/small:1`, 4096)).toBe(4096);
    expect(await budgetOf(`${REG}/default:1`)).toBe(NODE_BUDGET);
  });

  it('bounds workload_key (256 bytes, plain characters) with INVALID_ARGUMENT, never echoing it', async () => {
    const ok = await c.hint({
      image_ref: `${REG}/wk:1`,
      workload_key: `ns/deploy-a:v2@x.${'k'.repeat(230)}`,
    });
    expect(ok.job_id).toMatch(/^pf-/);
    for (const key of [
      'x'.repeat(257),
      'x'.repeat(1024 * 1024),
      'has space',
      'quote"d',
      'line\nbreak',
      'é',
    ]) {
      const f = await failure(c.hint({ image_ref: `${REG}/wk:2`, workload_key: key }));
      expect(f.code, JSON.stringify(key.slice(0, 20))).toBe(status.INVALID_ARGUMENT);
      expect(f.message).toMatch(/workload_key must be 1 to 256/);
      expect(f.message).not.toContain(key);
    }
  });

  it('bounds image_ref at 512 bytes', async () => {
    // A syntactically valid reference whose registry host alone is 600 bytes.
    const host = `${'a'.repeat(60)}.`.repeat(10) + 'test:5000';
    const f = await failure(c.hint({ image_ref: `${host}/app:1` }));
    expect(f.code).toBe(status.INVALID_ARGUMENT);
    expect(f.message).toMatch(/image_ref is longer than 512 bytes/);
    expect(f.message).not.toContain(host);
  });

  it('refuses an image on a registry outside hintRegistries with PERMISSION_DENIED', async () => {
    for (const image of ['other.test:5000/app:1', 'busybox:latest', `evil.${REG}/app:1`]) {
      const f = await failure(c.hint({ image_ref: image }));
      expect(f.code, image).toBe(status.PERMISSION_DENIED);
      expect(f.message).toMatch(/is not in this node's \[prefetch\] hintRegistries/);
    }
    expect((await failure(c.hint({ image_ref: 'busybox' }))).message).toMatch(/registry docker\.io /);
    expect([...started.keys()].some((k) => !k.startsWith(`${REG}/`))).toBe(false);
  });
});

describe('the daemon applies [prefetch] hintRegistries', () => {
  let daemon: DaemonPrefetch;
  let client: PrefetchClient;
  let registry: RegistryClient;
  const pool = new DecodePool({ workers: 1 });

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-pflim-d-'));
    const config = validateConfig({
      daemon: { stateDir: join(dir, 'state'), runDir: dir },
      prefetch: { hintRegistries: [REG], budgetBytes: NODE_BUDGET },
    });
    const log = silentLogger();
    registry = new RegistryClient({ log, requestTimeoutMs: 2_000, maxConcurrencyPerHost: 2, retries: 0 });
    const indexStore = new IndexStore({ dir: join(dir, 'indexes') });
    daemon = new DaemonPrefetch({
      config,
      log,
      registry,
      provider: new IndexProvider({
        store: indexStore,
        registry,
        log,
        chunkSizeBytes: 1 << 20,
        spanBytes: 2 << 20,
      }),
      chunkService: new ChunkService({
        store: new MemoryChunkStore({ maxBytes: 1 << 20 }),
        registry,
        pool,
        concurrency: 2,
        log,
      }),
    });
    await daemon.start();
    client = await prefetchClient({ socketPath: daemon.socketPath! });
  });

  afterAll(async () => {
    client?.close();
    await daemon?.stop(100);
    await registry?.close();
    await pool.close();
  });

  it('refuses another registry and queues an allowed one', async () => {
    expect((await failure(client.hint({ image_ref: 'other.test:5000/app:1' }))).code).toBe(
      status.PERMISSION_DENIED,
    );
    const h = await client.hint({ image_ref: `${REG}/app:1`, byte_budget: 1 });
    expect(h.job_id).toMatch(/^pf-/);
    await client.cancel(h.job_id);
  });
});
