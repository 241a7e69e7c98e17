// HintQueue with a fake runner: coalescing, the queue bound, priority order, cancel, deadlines, retention and
// bad requests — no registry, no gRPC.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isFerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { HintProgress, HintRun } from '../../src/prefetch/hint-job.js';
import { HintQueue } from '../../src/prefetch/hint-queue.js';

interface Started {
  run: HintRun;
  finish(): void;
  fail(e: Error): void;
}

/** A runner whose jobs run until the test finishes them (or they are aborted). */
function fakeRunner() {
  const started: Started[] = [];
  const runner = (run: HintRun) =>
    new Promise<void>((resolve, reject) => {
      run.phase('FETCHING');
      run.signal.addEventListener('abort', () => reject(run.signal.reason as Error), { once: true });
      started.push({ run, finish: resolve, fail: reject });
    });
  return { started, runner };
}

function queue(o: Partial<ConstructorParameters<typeof HintQueue>[0]> = {}) {
  const f = fakeRunner();
  const q = new HintQueue({
    runner: f.runner,
    maxQueued: 3,
    concurrency: 1,
    retainMs: 60_000,
    log: silentLogger(),
    ...o,
  });
  return { q, ...f };
}

const tick = () => new Promise((r) => setImmediate(r));
const ref = (n: string) => `registry.test:5000/app/${n}:1`;

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return isFerryError(e) ? e.code : String(e);
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('HintQueue', () => {
  it('coalesces repeated hints for one image into one job', async () => {
    const { q, started } = queue();
    const a = q.hint({ imageRef: ref('a'), priority: 0 });
    const b = q.hint({ imageRef: ref('a'), priority: 5 });
    expect(a.coalesced).toBe(false);
    expect(b).toEqual({ jobId: a.jobId, coalesced: true });
    // A different workload key is a different trace, so a different job.
    const c = q.hint({ imageRef: ref('a'), priority: 0, workloadKey: 'batch' });
    expect(c.jobId).not.toBe(a.jobId);
    await tick();
    expect(started).toHaveLength(1);
    expect(q.get(a.jobId)).toMatchObject({ hints: 2, phase: 'FETCHING' });
    started[0]!.finish();
    await tick();
    expect(q.get(a.jobId)?.phase).toBe('DONE');
    // A finished job is not joined: a new hint makes a new job.
    const d = q.hint({ imageRef: ref('a'), priority: 0 });
    expect(d.jobId).not.toBe(a.jobId);
    await q.close();
  });

  it('bounds the waiting queue with RESOURCE_EXHAUSTED (joining hints do not count)', async () => {
    const { q } = queue({ maxQueued: 2 });
    q.hint({ imageRef: ref('running'), priority: 0 }); // takes the one slot
    q.hint({ imageRef: ref('w1'), priority: 0 });
    q.hint({ imageRef: ref('w2'), priority: 0 });
    expect(codeOf(() => q.hint({ imageRef: ref('w3'), priority: 0 }))).toBe('RESOURCE_EXHAUSTED');
    expect(codeOf(() => q.hint({ imageRef: ref('w1'), priority: 9 }))).toBe('ok');
    expect(q.list().map((j) => j.phase)).toEqual(['FETCHING', 'QUEUED', 'QUEUED']);
    await q.close();
  });

  it('runs queued jobs by priority, then arrival; a joining hint can raise the priority', async () => {
    const { q, started } = queue({ maxQueued: 10 });
    q.hint({ imageRef: ref('first'), priority: 0 });
    q.hint({ imageRef: ref('low'), priority: 1 });
    q.hint({ imageRef: ref('high'), priority: 5 });
    q.hint({ imageRef: ref('mid-a'), priority: 3 });
    q.hint({ imageRef: ref('mid-b'), priority: 3 });
    q.hint({ imageRef: ref('late'), priority: 0 });
    q.hint({ imageRef: ref('late'), priority: 4 }); // joins and moves up
    for (let i = 0; i < 6; i++) {
      await tick();
      started[i]!.finish();
    }
    await tick();
    expect(started.map((s) => s.run.spec.imageRef.split('/app/')[1])).toEqual([
      'first:1',
      'high:1',
      'late:1',
      'mid-a:1',
      'mid-b:1',
      'low:1',
    ]);
    expect(q.list().every((j) => j.phase === 'DONE')).toBe(true);
    await q.close();
  });

  it('cancels queued and running jobs, and Watch sees CANCELLED last', async () => {
    const { q, started } = queue();
    const running = q.hint({ imageRef: ref('r'), priority: 0 });
    const queued = q.hint({ imageRef: ref('q'), priority: 0 });
    await tick();
    const seen: HintProgress[] = [];
    q.watch(running.jobId, (p) => seen.push(p));
    expect(q.cancel(queued.jobId).phase).toBe('CANCELLED');
    expect(q.cancel(running.jobId)).toMatchObject({ phase: 'CANCELLED', errorCode: 'ABORTED' });
    expect(started[0]!.run.signal.aborted).toBe(true);
    expect(seen.map((p) => p.phase)).toEqual(['FETCHING', 'CANCELLED']);
    // Cancelling again changes nothing; unknown ids are NOT_FOUND.
    expect(q.cancel(running.jobId).phase).toBe('CANCELLED');
    expect(codeOf(() => q.cancel('pf-nope'))).toBe('NOT_FOUND');
    expect(codeOf(() => q.watch('pf-nope', () => undefined))).toBe('NOT_FOUND');
    await tick();
    expect(started).toHaveLength(1); // the cancelled queued job never ran
    await q.close();
  });

  it('fails a job not done by its deadline with DEADLINE_EXCEEDED; joining extends to the later deadline', async () => {
    const { q, started } = queue({ maxQueued: 10 });
    const now = Date.now();
    const soon = q.hint({ imageRef: ref('soon'), priority: 0, deadlineUnixMs: now + 80 });
    const later = q.hint({ imageRef: ref('later'), priority: 0, deadlineUnixMs: now + 80 });
    q.hint({ imageRef: ref('later'), priority: 0, deadlineUnixMs: now + 60_000 });
    await new Promise((r) => setTimeout(r, 200));
    expect(q.get(soon.jobId)).toMatchObject({ phase: 'FAILED', errorCode: 'DEADLINE_EXCEEDED' });
    expect(started[0]!.run.signal.aborted).toBe(true);
    await tick();
    // The second job got the slot after the first failed, and its deadline moved out.
    expect(q.get(later.jobId)).toMatchObject({ phase: 'FETCHING', deadlineUnixMs: now + 60_000 });
    await q.close();
  });

  it('reports a runner failure with its code (e.g. an unknown image is NOT_FOUND)', async () => {
    const { q, started } = queue();
    const j = q.hint({ imageRef: ref('gone'), priority: 0 });
    await tick();
    const { NotFoundError } = await import('../../src/errors.js');
    started[0]!.fail(new NotFoundError('manifest unknown: registry.test:5000/app/gone:1'));
    await tick();
    expect(q.get(j.jobId)).toMatchObject({
      phase: 'FAILED',
      errorCode: 'NOT_FOUND',
      error: expect.stringContaining('gone') as string,
    });
  });

  it('refuses bad requests with INVALID_ARGUMENT', () => {
    const { q } = queue();
    expect(codeOf(() => q.hint({ imageRef: '', priority: 0 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => q.hint({ imageRef: 'UPPER/Case::bad', priority: 0 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => q.hint({ imageRef: ref('x'), priority: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => q.hint({ imageRef: ref('x'), priority: 0, budgetBytes: -1 }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => q.hint({ imageRef: ref('x'), priority: 0, deadlineUnixMs: Date.now() - 1 }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(q.list()).toEqual([]);
  });

  it('forgets finished jobs after the retention time', async () => {
    let now = 1_000_000;
    const { q, started } = queue({ retainMs: 1000, now: () => now });
    const j = q.hint({ imageRef: ref('a'), priority: 0 });
    await tick();
    started[0]!.finish();
    await tick();
    expect(q.list()).toHaveLength(1);
    now += 1001;
    expect(q.get(j.jobId)).toBeUndefined();
    expect(q.list()).toEqual([]);
  });
});
