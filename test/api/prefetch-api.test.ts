// ferry.prefetch.v1 end to end over real gRPC: a PrefetchServer on a unix socket (and TCP with a bearer token)
// in front of a HintQueue whose runner is a scripted fake; the client is src/api/prefetch-client.ts.
import { status } from '@grpc/grpc-js';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prefetchClient, PrefetchApiError, type PrefetchClient } from '../../src/api/prefetch-client.js';
import { PrefetchServer } from '../../src/api/prefetch-server.js';
import { NotFoundError } from '../../src/errors.js';
import { sha256 } from '../../src/image/digest.js';
import { silentLogger } from '../../src/log.js';
import type { HintRun } from '../../src/prefetch/hint-job.js';
import { HintQueue } from '../../src/prefetch/hint-queue.js';

const TOKEN = 'a-long-enough-bearer-token-0123456789';
const REG = 'registry.test:5000';

/** "unknown" images fail like a registry 404; "slow" ones wait for cancel; others fetch 4 chunks. */
async function fakeRunner(run: HintRun): Promise<void> {
  run.phase('RESOLVING');
  if (run.spec.imageRef.includes('/unknown'))
    throw new NotFoundError(`${run.spec.imageRef}: manifest unknown`);
  run.resolved(sha256(run.spec.imageRef));
  run.phase('INDEXING');
  run.planned('none', { chunks: 4, bytes: 4096 });
  run.phase('FETCHING');
  const slow = run.spec.imageRef.includes('/slow');
  for (let i = 1; i <= 4; i++) {
    // Abortable, as the real runner is: a cancelled job gives its slot back at once.
    await sleep(slow ? 5_000 : 20, undefined, { signal: run.signal });
    run.progress({
      chunksDone: i,
      chunksTotal: 4,
      bytesDone: i * 1024,
      bytesTotal: 4096,
      chunksCached: 0,
      chunksFailed: 0,
    });
  }
}

let server: PrefetchServer;
let jobs: HintQueue;
let socketPath: string;
let c: PrefetchClient;

beforeAll(async () => {
  socketPath = join(mkdtempSync(join(tmpdir(), 'ferry-pfapi-')), 'prefetch.sock');
  jobs = new HintQueue({
    runner: fakeRunner,
    maxQueued: 3,
    concurrency: 2,
    retainMs: 60_000,
    log: silentLogger(),
  });
  server = new PrefetchServer({
    jobs,
    socketPath,
    tcpAddress: '127.0.0.1:0',
    token: TOKEN,
    log: silentLogger(),
  });
  await server.start();
  c = await prefetchClient({ socketPath });
});

afterAll(async () => {
  c?.close();
  await server?.stop(1000);
  await jobs?.close();
});

async function grpcCodeOf(p: Promise<unknown>): Promise<number | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (e instanceof PrefetchApiError) return e.grpcCode;
    throw e;
  }
}

describe('prefetch hint API over gRPC', () => {
  it('serves on a 0600 unix socket', () => {
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
  });

  it('Hint + Watch: progress streams to DONE; a repeated hint joins the job; List shows it', async () => {
    const h = await c.hint({ image_ref: `${REG}/app:1`, priority: 2 });
    expect(h.job_id).toMatch(/^pf-[0-9a-f]{16}$/);
    expect(h.coalesced).toBe(false);
    const again = await c.hint({ image_ref: `${REG}/app:1` });
    expect(again).toEqual({ job_id: h.job_id, coalesced: true });
    const seen: string[] = [];
    const final = await c.watch(h.job_id, (p) => seen.push(`${p.phase}:${p.chunks_done}`));
    expect(final).toMatchObject({
      job_id: h.job_id,
      image_ref: `${REG}/app:1`,
      phase: 'DONE',
      priority: 2,
      chunks_done: 4,
      chunks_total: 4,
      bytes_done: 4096,
      bytes_total: 4096,
      trace_origin: 'none',
      manifest_digest: sha256(`${REG}/app:1`),
      hints: 2,
      error: '',
    });
    expect(seen.at(-1)).toBe('DONE:4');
    expect(seen.filter((s) => s.startsWith('FETCHING')).length).toBeGreaterThanOrEqual(2);
    // Watching a finished job replays its final state and ends.
    expect((await c.watch(h.job_id)).phase).toBe('DONE');
    const listed = await c.list();
    expect(listed.find((j) => j.job_id === h.job_id)?.phase).toBe('DONE');
  });

  it('an unknown image fails the job with NOT_FOUND, visible through Watch', async () => {
    const h = await c.hint({ image_ref: `${REG}/unknown:1` });
    const final = await c.watch(h.job_id);
    expect(final).toMatchObject({ phase: 'FAILED', error_code: 'NOT_FOUND' });
    expect(final.error).toContain('unknown:1');
  });

  it('Cancel ends a running job; Watch sees CANCELLED', async () => {
    const h = await c.hint({ image_ref: `${REG}/slow:1` });
    const watching = c.watch(h.job_id);
    await new Promise((r) => setTimeout(r, 50));
    const after = await c.cancel(h.job_id);
    expect(after.phase).toBe('CANCELLED');
    expect((await watching).phase).toBe('CANCELLED');
  });

  it('bad requests are INVALID_ARGUMENT, unknown jobs NOT_FOUND, a full queue RESOURCE_EXHAUSTED', async () => {
    expect(await grpcCodeOf(c.hint({ image_ref: '' }))).toBe(status.INVALID_ARGUMENT);
    expect(await grpcCodeOf(c.hint({ image_ref: 'Not A Ref!' }))).toBe(status.INVALID_ARGUMENT);
    expect(await grpcCodeOf(c.hint({ image_ref: `${REG}/app:2`, deadline_unix_ms: 1000 }))).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await grpcCodeOf(c.watch('pf-0000000000000000'))).toBe(status.NOT_FOUND);
    expect(await grpcCodeOf(c.cancel('pf-0000000000000000'))).toBe(status.NOT_FOUND);
    // Two slow jobs take both slots; three wait; the fourth waiting one is refused.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await c.hint({ image_ref: `${REG}/slow-${i}:1` })).job_id);
    expect(await grpcCodeOf(c.hint({ image_ref: `${REG}/slow-9:1` }))).toBe(status.RESOURCE_EXHAUSTED);
    for (const id of ids) await c.cancel(id);
  });

  it('TCP needs the bearer token', async () => {
    const address = `127.0.0.1:${server.tcpPort}`;
    const good = await prefetchClient({ address, token: TOKEN });
    const wrong = await prefetchClient({ address, token: `${TOKEN}x` });
    const none = await prefetchClient({ address });
    try {
      const h = await good.hint({ image_ref: `${REG}/tcp:1` });
      expect((await good.watch(h.job_id)).phase).toBe('DONE');
      expect(await grpcCodeOf(wrong.hint({ image_ref: `${REG}/tcp:2` }))).toBe(status.UNAUTHENTICATED);
      expect(await grpcCodeOf(none.list())).toBe(status.UNAUTHENTICATED);
      expect(await grpcCodeOf(wrong.watch(h.job_id))).toBe(status.UNAUTHENTICATED);
      expect((await c.list()).some((j) => j.image_ref.endsWith('/tcp:2'))).toBe(false);
    } finally {
      good.close();
      wrong.close();
      none.close();
    }
  });
});
