// HintQueue: the node's prefetch-hint jobs — coalesces hints per image, bounds and orders the waiting queue by
// priority, runs a few jobs at once, enforces deadlines and cancels, and keeps finished jobs for Watch/List.
import { randomBytes } from 'node:crypto';
import {
  AbortedError,
  DeadlineError,
  InvalidArgumentError,
  NotFoundError,
  ResourceExhaustedError,
  isFerryError,
} from '../errors.js';
import type { Logger } from '../log.js';
import {
  FINAL_PHASES,
  normalizeHint,
  queuedProgress,
  type HintPhase,
  type HintProgress,
  type HintRun,
  type HintRunner,
  type HintSpec,
} from './hint-job.js';

export interface HintQueueOptions {
  runner: HintRunner;
  /** Jobs waiting at most; one more hint is refused with RESOURCE_EXHAUSTED. */
  maxQueued: number;
  /** Jobs running at once. */
  concurrency: number;
  /** The node's `[prefetch] budgetBytes`: the budget of a hint that names none, and the most one may ask for. */
  nodeBudgetBytes?: number;
  /** `[prefetch] hintRegistries`: a hint naming another registry is refused (PERMISSION_DENIED). Empty = any. */
  hintRegistries?: readonly string[];
  /** Finished jobs stay visible to Watch/List this long… */
  retainMs: number;
  /** …and at most this many of them. */
  maxRetained?: number;
  log: Logger;
  now?: () => number;
}

export type ProgressListener = (p: Readonly<HintProgress>) => void;

interface Job {
  readonly key: string;
  readonly seq: number;
  readonly spec: HintSpec;
  readonly p: HintProgress;
  readonly controller: AbortController;
  readonly listeners: Set<ProgressListener>;
  deadlineTimer?: NodeJS.Timeout | undefined;
  running?: Promise<void>;
}

const LATER = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? undefined : Math.max(a, b);

export class HintQueue {
  private readonly o: HintQueueOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly jobs = new Map<string, Job>();
  /** Queued or running jobs by image (+ workload): where a repeated hint joins. */
  private readonly active = new Map<string, Job>();
  private queue: Job[] = [];
  private readonly running = new Set<Job>();
  private seq = 0;
  private closed = false;

  constructor(options: HintQueueOptions) {
    for (const k of ['maxQueued', 'concurrency'] as const) {
      if (!Number.isSafeInteger(options[k]) || options[k] < 1)
        throw new InvalidArgumentError(`hint queue ${k} must be a positive integer, got ${options[k]}`);
    }
    this.o = options;
    this.log = options.log.child({ component: 'prefetch-hints' });
    this.now = options.now ?? Date.now;
  }

  /** Queues a job for the image, or joins the queued/running one; returns its id. */
  hint(spec: HintSpec): { jobId: string; coalesced: boolean } {
    if (this.closed) throw new AbortedError('prefetch hints: the daemon is shutting down');
    const s = normalizeHint(spec, this.now(), {
      nodeBudgetBytes: this.o.nodeBudgetBytes,
      registries: this.o.hintRegistries,
    });
    this.prune();
    const key = `${s.imageRef}\u0000${s.workloadKey ?? ''}`;
    const existing = this.active.get(key);
    if (existing !== undefined) {
      this.join(existing, s);
      return { jobId: existing.p.jobId, coalesced: true };
    }
    if (this.queue.length >= this.o.maxQueued) {
      throw new ResourceExhaustedError(
        `prefetch hint queue is full (${this.queue.length} jobs waiting); hint ${s.imageRef} again later`,
      );
    }
    const jobId = `pf-${randomBytes(8).toString('hex')}`;
    const job: Job = {
      key,
      seq: this.seq++,
      spec: s,
      controller: new AbortController(),
      listeners: new Set(),
      p: queuedProgress(jobId, s, this.now()),
    };
    this.jobs.set(jobId, job);
    this.active.set(key, job);
    this.enqueue(job);
    this.armDeadline(job);
    this.log.info({ jobId, image: s.imageRef, priority: s.priority }, 'prefetch hint queued');
    this.pump();
    return { jobId, coalesced: false };
  }

  get(jobId: string): HintProgress | undefined {
    this.prune();
    const j = this.jobs.get(jobId);
    return j === undefined ? undefined : { ...j.p };
  }

  /** Calls `listener` now and on every change; returns the unsubscribe function. NOT_FOUND for unknown ids. */
  watch(jobId: string, listener: ProgressListener): () => void {
    const j = this.find(jobId);
    j.listeners.add(listener);
    listener({ ...j.p });
    return () => j.listeners.delete(listener);
  }

  /** Cancels a queued or running job; a finished one is left as it is. */
  cancel(jobId: string): HintProgress {
    const j = this.find(jobId);
    this.stop(j, new AbortedError(`prefetch of ${j.p.imageRef} cancelled`));
    return { ...j.p };
  }

  /** Every known job, oldest first. */
  list(): HintProgress[] {
    this.prune();
    return [...this.jobs.values()].sort((a, b) => a.seq - b.seq).map((j) => ({ ...j.p }));
  }

  /** Cancels everything and waits for running jobs to wind down. */
  async close(): Promise<void> {
    this.closed = true;
    const runs = [...this.running].map((j) => j.running ?? Promise.resolve());
    for (const j of [...this.jobs.values()])
      this.stop(j, new AbortedError('prefetch hints: the daemon is shutting down'));
    await Promise.all(runs);
  }

  private find(jobId: string): Job {
    this.prune();
    const j = this.jobs.get(jobId);
    if (j === undefined) throw new NotFoundError(`no prefetch job ${jobId}`);
    return j;
  }

  /** A repeated hint: the most urgent priority, the later deadline, the larger budget (while still queued). */
  private join(j: Job, s: HintSpec): void {
    j.p.hints++;
    if (j.p.phase === 'QUEUED') {
      if (s.priority > j.spec.priority) {
        j.spec.priority = s.priority;
        j.p.priority = s.priority;
        this.queue = this.queue.filter((q) => q !== j);
        this.enqueue(j);
      }
      if (s.budgetBytes !== undefined) j.spec.budgetBytes = Math.max(j.spec.budgetBytes ?? 0, s.budgetBytes);
    }
    const deadline = LATER(j.spec.deadlineUnixMs, s.deadlineUnixMs);
    if (deadline !== j.spec.deadlineUnixMs) {
      j.spec.deadlineUnixMs = deadline;
      if (deadline === undefined) delete j.p.deadlineUnixMs;
      else j.p.deadlineUnixMs = deadline;
      this.armDeadline(j);
    }
    this.emit(j);
  }

  private enqueue(j: Job): void {
    // Highest priority first, then arrival order; queues are short (bounded by maxQueued).
    const at = this.queue.findIndex((q) => q.spec.priority < j.spec.priority);
    if (at < 0) this.queue.push(j);
    else this.queue.splice(at, 0, j);
  }

  private armDeadline(j: Job): void {
    clearTimeout(j.deadlineTimer);
    j.deadlineTimer = undefined;
    const d = j.spec.deadlineUnixMs;
    if (d === undefined) return;
    j.deadlineTimer = setTimeout(
      () => this.stop(j, new DeadlineError(`prefetch of ${j.p.imageRef} not done by its deadline`)),
      Math.max(0, d - this.now()),
    );
    j.deadlineTimer.unref();
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.o.concurrency) {
      const j = this.queue.shift();
      if (j === undefined) return;
      this.running.add(j);
      j.running = this.run(j).finally(() => {
        this.running.delete(j);
        this.pump();
      });
    }
  }

  private async run(j: Job): Promise<void> {
    const set = (f: () => void): void => {
      if (FINAL_PHASES.has(j.p.phase)) return;
      f();
      this.emit(j);
    };
    const run: HintRun = {
      jobId: j.p.jobId,
      spec: { ...j.spec },
      signal: j.controller.signal,
      phase: (p) => set(() => (j.p.phase = p)),
      resolved: (d) => set(() => (j.p.manifestDigest = d)),
      planned: (origin, t) =>
        set(() => Object.assign(j.p, { traceOrigin: origin, chunksTotal: t.chunks, bytesTotal: t.bytes })),
      progress: (c) => set(() => Object.assign(j.p, c)),
    };
    const t0 = this.now();
    try {
      await this.o.runner(run);
      j.controller.signal.throwIfAborted();
      this.finish(j, 'DONE');
      this.log.info({ jobId: j.p.jobId, image: j.p.imageRef, ms: this.now() - t0 }, 'prefetch hint done');
    } catch (e) {
      const reason: unknown = j.controller.signal.aborted ? j.controller.signal.reason : e;
      this.fail(j, reason);
    }
  }

  /**
   * Cancel or deadline: the job ends at once for its watchers; a running one keeps its slot until its runner
   * has noticed the signal and wound down.
   */
  private stop(j: Job, reason: Error): void {
    if (FINAL_PHASES.has(j.p.phase)) return;
    this.queue = this.queue.filter((q) => q !== j);
    j.controller.abort(reason);
    this.fail(j, reason);
  }

  private fail(j: Job, e: unknown): void {
    if (FINAL_PHASES.has(j.p.phase)) return;
    const code = isFerryError(e) ? e.code : 'INTERNAL';
    j.p.errorCode = code;
    j.p.error = e instanceof Error ? e.message : String(e);
    this.finish(j, code === 'ABORTED' ? 'CANCELLED' : 'FAILED');
    const fields = { jobId: j.p.jobId, image: j.p.imageRef, code, err: j.p.error };
    if (code === 'ABORTED') this.log.info(fields, 'prefetch hint cancelled');
    else this.log.warn(fields, 'prefetch hint failed');
  }

  private finish(j: Job, phase: HintPhase): void {
    if (FINAL_PHASES.has(j.p.phase)) return;
    j.p.phase = phase;
    j.p.finishedUnixMs = this.now();
    clearTimeout(j.deadlineTimer);
    if (this.active.get(j.key) === j) this.active.delete(j.key);
    this.emit(j);
    j.listeners.clear();
  }

  private emit(j: Job): void {
    const snapshot = { ...j.p };
    for (const l of [...j.listeners]) {
      try {
        l(snapshot);
      } catch (e) {
        this.log.debug({ err: e }, 'prefetch progress listener threw');
      }
    }
  }

  /** Forgets finished jobs past their retention (time, then count). */
  private prune(): void {
    const now = this.now();
    const finished = [...this.jobs.values()].filter((j) => j.p.finishedUnixMs !== undefined);
    const max = this.o.maxRetained ?? 1000;
    finished.forEach((j, i) => {
      if (now - j.p.finishedUnixMs! > this.o.retainMs || finished.length - i > max)
        this.jobs.delete(j.p.jobId);
    });
  }
}
