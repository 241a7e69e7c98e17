// When remote layers become plain directories (`<dir>/mat`): after a layer is mounted, proven and the start has
// settled, one layer at a time, per policy (`cached`: once every chunk is local; `background`: fetching the rest
// at background priority). Records the result in the metadata, so new mounts (and restarts) skip FUSE.
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isFerryError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MetadataStore, SnapshotRecord } from './metadata-store.js';
import type { RemoteFileSystem } from './remote-fs.js';

export type MaterialisePolicy = 'off' | 'cached' | 'background';

export interface LayerMaterialiserOptions {
  remote: RemoteFileSystem;
  store: MetadataStore;
  log: Logger;
  /** `<root>/snapshots/<id>`. */
  dirOf(id: number): string;
  policy: MaterialisePolicy;
  /** How long after a layer is mounted (and proven) it may be materialised: the start gets the disk and link. */
  delayMs: number;
}

interface Job {
  name: string;
  ac: AbortController;
  done: Promise<void>;
}

export class LayerMaterialiser {
  /** Layers mounted by this process that may be materialised once proven: id → their proof. */
  private readonly proofs = new Map<number, Promise<void>>();
  /** Queued or running, by id. */
  private readonly jobs = new Map<number, Job>();
  /** Failed for good in this process (disk full, broken layer): FUSE keeps serving them. */
  private readonly failed = new Set<number>();
  /** One layer at a time: each job waits for the one before. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly o: LayerMaterialiserOptions) {}

  static matDir(dir: string): string {
    return join(dir, 'mat');
  }

  /** A remote layer was mounted for `rec`; `proven` resolves once its index is proven (undefined: it is). */
  mounted(rec: SnapshotRecord, proven: Promise<void> | undefined): void {
    if (this.o.policy === 'off') return;
    this.proofs.set(
      rec.id,
      (proven ?? Promise.resolve()).then(
        () => undefined,
        () => Promise.reject(new Error('layer failed its audit')),
      ),
    );
    this.proofs.get(rec.id)!.catch(() => undefined);
    this.schedule(rec);
  }

  /** Another chance for a layer mounted earlier (a new mount uses it; `cached` finds more chunks local now). */
  schedule(rec: SnapshotRecord): void {
    const proof = this.proofs.get(rec.id);
    if (rec.materialised || proof === undefined || this.jobs.has(rec.id) || this.failed.has(rec.id)) return;
    const ac = new AbortController();
    const job: Job = { name: rec.name, ac, done: Promise.resolve() };
    job.done = (async () => {
      try {
        await proof;
        await sleep(this.o.delayMs, ac.signal);
        const before = this.chain;
        let release!: () => void;
        this.chain = new Promise((res) => (release = res));
        try {
          await before;
          await this.run(rec.id, job);
        } finally {
          release();
        }
      } catch (e) {
        if (!ac.signal.aborted) this.fail(rec.id, job.name, e);
      } finally {
        this.jobs.delete(rec.id);
      }
    })();
    this.jobs.set(rec.id, job);
  }

  private async run(id: number, job: Job): Promise<void> {
    job.ac.signal.throwIfAborted();
    const rec = this.o.store.get(job.name);
    if (rec?.id !== id || rec.materialised) return; // removed or renamed (quarantined) meanwhile
    const dir = this.o.dirOf(id);
    const r = await this.o.remote.materialise?.(
      join(dir, 'fs'),
      LayerMaterialiser.matDir(dir),
      { fetchMissing: this.o.policy === 'background' },
      job.ac.signal,
    );
    if (r !== 'done') return; // `cached`: not all local yet; the next mount of a child asks again
    job.ac.signal.throwIfAborted();
    this.o.store.setMaterialised(id, true);
  }

  private fail(id: number, name: string, e: unknown): void {
    this.failed.add(id);
    if (isFerryError(e, 'RESOURCE_EXHAUSTED'))
      this.o.log.error(
        { key: name, err: String(e) },
        'disk full: layer not materialised; FUSE keeps serving it',
      );
    else this.o.log.warn({ key: name, err: String(e) }, 'layer not materialised; FUSE keeps serving it');
  }

  /** Stops work on `id` (being removed) and waits until nothing writes under its dir any more. */
  async cancel(id: number): Promise<void> {
    this.proofs.delete(id);
    const job = this.jobs.get(id);
    job?.ac.abort();
    await job?.done;
  }

  /**
   * At start, before mounts are handed out: true when `rec`'s materialised dir is there to use. A dir the
   * metadata does not vouch for (a crash before it was recorded) is removed, as is a half-written one.
   */
  async restore(rec: SnapshotRecord): Promise<boolean> {
    const mat = LayerMaterialiser.matDir(this.o.dirOf(rec.id));
    await rm(`${mat}.tmp`, { recursive: true, force: true });
    const keep = rec.materialised && this.o.policy !== 'off';
    if (
      keep &&
      (await access(mat).then(
        () => true,
        () => false,
      ))
    )
      return true;
    if (rec.materialised) this.o.store.setMaterialised(rec.id, false);
    await rm(mat, { recursive: true, force: true });
    return false;
  }

  async close(): Promise<void> {
    const ids = [...this.jobs.keys()];
    await Promise.all(ids.map((id) => this.cancel(id)));
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((res, rej) => {
    const t = setTimeout(res, ms);
    t.unref();
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        rej(signal.reason as Error);
      },
      { once: true },
    );
  });
}
