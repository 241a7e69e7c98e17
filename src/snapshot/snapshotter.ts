// containerd snapshot semantics over the metadata store and `<root>/snapshots/<id>/{fs,work}` directories (like
// containerd's overlayfs snapshotter), plus the remote path: a Prepare naming a layer is mounted lazily through a
// RemoteFileSystem, committed under its target and answered ALREADY_EXISTS; any failure falls back.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, InvalidArgumentError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import { dirWithMode } from '../private-fs.js';
import { preciseNowMs } from './clock.js';
import { parseFilters } from './filters.js';
import { LayerMaterialiser, type MaterialisePolicy } from './layer-materialiser.js';
import { applyLabelMask, validateLabels, withoutEmpty } from './labels.js';
import type { MetadataStore, SnapshotRecord } from './metadata-store.js';
import { snapshotMounts } from './mounts.js';
import { remoteLayerRef } from './remote-labels.js';
import type { RemoteFileSystem } from './remote-fs.js';
import { RemoteSnapshots } from './remote-snapshots.js';
import type { SnapshotInfo, SnapshotMount, SnapshotUsage } from './types.js';
import { diskUsage } from './usage.js';

export interface SnapshotterOptions {
  /** Snapshot dirs live in `<root>/snapshots/<id>`. Keep it short: lowerdir options have a size limit. */
  root: string;
  store: MetadataStore;
  log: Logger;
  remote?: RemoteFileSystem;
  /** How long a lazy mount may take before Prepare falls back to an ordinary snapshot. */
  remoteTimeoutMs: number;
  /** Extra overlay options, e.g. `index=off`. */
  overlayOptions?: readonly string[];
  /** When remote layers become plain dirs that new mounts use instead of FUSE (default off). */
  materialise?: { policy: MaterialisePolicy; delayMs: number };
  /** Wall time in ms for Created/Updated (a fraction allowed); defaults to the microsecond clock. */
  now?: () => number;
}

export interface CreateRequest {
  key: string;
  parent: string;
  labels: Readonly<Record<string, string>>;
}

function toInfo(r: SnapshotRecord): SnapshotInfo {
  return {
    name: r.name,
    parent: r.parent,
    kind: r.kind,
    createdAtMs: r.createdAtMs,
    updatedAtMs: r.updatedAtMs,
    labels: r.labels,
  };
}

const alreadyExists = (target: string): FerryError =>
  new FerryError('ALREADY_EXISTS', `target snapshot ${JSON.stringify(target)}: already exists`);

export class Snapshotter {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly remote: RemoteSnapshots | undefined;
  private readonly materialiser: LayerMaterialiser | undefined;

  constructor(private readonly o: SnapshotterOptions) {
    this.log = o.log.child({ component: 'snapshotter' });
    this.now = o.now ?? preciseNowMs;
    const m = o.materialise;
    this.materialiser =
      o.remote === undefined || m === undefined
        ? undefined
        : new LayerMaterialiser({
            remote: o.remote,
            store: o.store,
            log: this.log,
            dirOf: (id) => this.dirOf(id),
            ...m,
          });
    this.remote =
      o.remote === undefined
        ? undefined
        : new RemoteSnapshots({
            remote: o.remote,
            store: o.store,
            log: this.log,
            timeoutMs: o.remoteTimeoutMs,
            dirOf: (id) => this.dirOf(id),
            now: this.now,
            onMounted: (rec, proven) => this.materialiser?.mounted(rec, proven),
          });
  }

  get snapshotsDir(): string {
    return join(this.o.root, 'snapshots');
  }

  dirOf(id: number): string {
    return join(this.snapshotsDir, String(id));
  }

  async prepare(r: CreateRequest, signal?: AbortSignal): Promise<SnapshotMount[]> {
    return this.create('active', r, signal);
  }

  async view(r: CreateRequest, signal?: AbortSignal): Promise<SnapshotMount[]> {
    return this.create('view', r, signal);
  }

  private async create(
    kind: 'active' | 'view',
    r: CreateRequest,
    signal?: AbortSignal,
  ): Promise<SnapshotMount[]> {
    if (r.key === '') throw new InvalidArgumentError('snapshot key must not be empty');
    validateLabels(r.labels, `snapshot ${JSON.stringify(r.key)}`);
    const remote = kind === 'active' ? this.remote : undefined;
    const layer = remote !== undefined ? remoteLayerRef(r.labels) : undefined;
    if (remote !== undefined && layer !== undefined) {
      // No await once nothing is pending: from here to track() below runs in one tick, so a target mounts once.
      for (let p = remote.pending(layer.target); p !== undefined; p = remote.pending(layer.target)) await p;
      // Another namespace (or a retry) already holds this layer: nothing to create or mount.
      if (remote.has(layer.target, r.parent)) throw alreadyExists(layer.target);
    }
    const labels = withoutEmpty(r.labels);
    const rec = this.o.store.create({ key: r.key, parent: r.parent, kind, labels, nowMs: this.now() });
    if (remote !== undefined && layer !== undefined) {
      const attempt = this.makeDirs(rec).then(() => remote.prepare(rec, layer, labels, signal));
      if (await remote.track(layer.target, attempt)) throw alreadyExists(layer.target);
    } else {
      await this.makeDirs(rec);
    }
    return this.mountsOf(rec, signal);
  }

  private async makeDirs(rec: SnapshotRecord): Promise<void> {
    try {
      // As containerd's overlay snapshotter (an upper dir's mode is the container's `/`), whatever the umask.
      await dirWithMode(join(this.dirOf(rec.id), 'fs'), 0o755);
      if (rec.kind === 'active') await dirWithMode(join(this.dirOf(rec.id), 'work'), 0o711);
    } catch (e) {
      this.o.store.remove(rec.name);
      throw new FerryError(
        'INTERNAL',
        `cannot create dirs of snapshot ${JSON.stringify(rec.name)}: ${String(e)}`,
        {
          cause: e,
        },
      );
    }
  }

  async mounts(key: string, signal?: AbortSignal): Promise<SnapshotMount[]> {
    const rec = this.o.store.require(key);
    if (rec.kind === 'committed')
      throw new FerryError('FAILED_PRECONDITION', `snapshot ${JSON.stringify(key)} is not active or view`);
    return this.mountsOf(rec, signal);
  }

  private async mountsOf(rec: SnapshotRecord, signal?: AbortSignal): Promise<SnapshotMount[]> {
    const parents = this.o.store.parents(rec);
    for (const p of parents) {
      if (!p.remote || p.materialised) continue;
      if (this.remote === undefined)
        throw new UnavailableError(
          `remote snapshot ${JSON.stringify(p.name)} needs lazy loading, which is off`,
        );
      await this.remote.ensure(p, signal);
      this.materialiser?.schedule(p);
    }
    return snapshotMounts({
      kind: rec.kind,
      fsDir: join(this.dirOf(rec.id), 'fs'),
      workDir: join(this.dirOf(rec.id), 'work'),
      // A materialised layer's plain dir instead of its FUSE mount; mounts made before keep the FUSE one.
      parentFsDirs: parents.map((p) =>
        p.remote && p.materialised
          ? LayerMaterialiser.matDir(this.dirOf(p.id))
          : join(this.dirOf(p.id), 'fs'),
      ),
      overlayOptions: this.o.overlayOptions ?? [],
    });
  }

  async commit(
    c: { name: string; key: string; labels: Readonly<Record<string, string>> },
    signal?: AbortSignal,
  ) {
    if (c.name === '') throw new InvalidArgumentError('snapshot name must not be empty');
    validateLabels(c.labels, `snapshot ${JSON.stringify(c.name)}`);
    const rec = this.o.store.require(c.key);
    if (rec.kind !== 'active')
      throw new FerryError('FAILED_PRECONDITION', `snapshot ${JSON.stringify(c.key)} is not active`);
    const usage = await diskUsage(join(this.dirOf(rec.id), 'fs'), signal);
    this.o.store.commit({
      key: c.key,
      name: c.name,
      labels: withoutEmpty(c.labels),
      sizeBytes: usage.sizeBytes,
      inodes: usage.inodes,
      remote: false,
      nowMs: this.now(),
    });
  }

  async remove(key: string): Promise<void> {
    const rec = this.o.store.remove(key);
    const dir = this.dirOf(rec.id);
    await this.materialiser?.cancel(rec.id);
    if (rec.remote && this.remote !== undefined) {
      try {
        await this.remote.release(rec);
      } catch (e) {
        // Leave the dir for Cleanup: removing files under a live mount is never right.
        this.log.warn({ key, err: String(e) }, 'remote snapshot unmount failed; dir left for cleanup');
        return;
      }
    }
    await rm(dir, { recursive: true, force: true }).catch((e: unknown) =>
      this.log.warn({ key, dir, err: String(e) }, 'snapshot dir not removed; left for cleanup'),
    );
  }

  stat(key: string): SnapshotInfo {
    return toInfo(this.o.store.require(key));
  }

  /** Only labels are mutable: mask `labels` replaces all, `labels.<k>` sets or (absent/empty) deletes one. */
  update(
    info: { name: string; labels: Readonly<Record<string, string>> },
    paths: readonly string[],
  ): SnapshotInfo {
    const rec = this.o.store.require(info.name);
    const next = applyLabelMask(rec.labels, info.labels, paths, info.name);
    validateLabels(next, `snapshot ${JSON.stringify(info.name)}`);
    return toInfo(this.o.store.setLabels(info.name, next, this.now()));
  }

  list(filters: readonly string[]): SnapshotInfo[] {
    const match = parseFilters(filters);
    return this.o.store.all().map(toInfo).filter(match);
  }

  async usage(key: string, signal?: AbortSignal): Promise<SnapshotUsage> {
    const rec = this.o.store.require(key);
    if (rec.kind === 'active') return diskUsage(join(this.dirOf(rec.id), 'fs'), signal);
    return { sizeBytes: rec.sizeBytes, inodes: rec.inodes };
  }

  /** Removes snapshot dirs that no metadata refers to (left by crashes or failed removals); returns them. */
  async cleanup(signal?: AbortSignal): Promise<string[]> {
    const known = new Set(this.o.store.all().map((r) => String(r.id)));
    let names: string[];
    try {
      names = await readdir(this.snapshotsDir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const n of names) {
      signal?.throwIfAborted();
      if (known.has(n)) continue;
      const dir = join(this.snapshotsDir, n);
      await this.remote?.releaseDir(dir);
      try {
        await rm(dir, { recursive: true, force: true });
        removed.push(dir);
      } catch (e) {
        this.log.warn({ dir, err: String(e) }, 'cleanup could not remove dir');
      }
    }
    if (removed.length > 0)
      this.log.info({ removed: removed.length }, 'cleanup removed orphan snapshot dirs');
    return removed;
  }

  /** At start: recreate missing dirs of active snapshots and re-mount every remote snapshot from its labels. */
  async restore(signal?: AbortSignal): Promise<{ restored: number; failed: number }> {
    await mkdir(this.snapshotsDir, { recursive: true, mode: 0o700 });
    let restored = 0;
    let failed = 0;
    for (const rec of this.o.store.all()) {
      const dir = this.dirOf(rec.id);
      if (!rec.remote) {
        // A crash between the metadata write and mkdir leaves a record without dirs; never delete records here.
        if (rec.kind !== 'committed') await dirWithMode(join(dir, 'fs'), 0o755).catch(() => undefined);
        if (rec.kind === 'active') await dirWithMode(join(dir, 'work'), 0o711).catch(() => undefined);
        continue;
      }
      try {
        if (this.remote === undefined) throw new UnavailableError('lazy loading is off');
        // Not `recursive` on fs/: that stats an existing path, and a layer the FUSE holder kept mounted there
        // would answer only once we serve it (below) — a wait on ourselves.
        await mkdir(dir, { recursive: true });
        await mkdir(join(dir, 'fs')).catch((e: unknown) => {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        });
        // A materialised layer needs no FUSE mount, unless running containers still use the one kept for them.
        const plain = (await this.materialiser?.restore(rec)) === true;
        if (!plain || this.o.remote?.holds?.(join(dir, 'fs')) !== false)
          await this.remote.ensure(rec, signal);
        restored++;
      } catch (e) {
        failed++;
        this.log.error(
          { key: rec.name, err: String(e) },
          'remote snapshot not restored; retried on next use',
        );
      }
    }
    return { restored, failed };
  }

  /** Unmounts every remote layer this process mounted. */
  async close(): Promise<void> {
    await this.materialiser?.close();
    await this.remote?.close();
  }
}
