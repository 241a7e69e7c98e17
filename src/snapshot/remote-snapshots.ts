// The remote half of the snapshotter: mount a layer lazily for a Prepare and commit it under its target, keep
// the mounts of committed remote snapshots alive (check, re-mount from labels), and release them.
import { join } from 'node:path';
import { isFerryError, UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MetadataStore, SnapshotRecord } from './metadata-store.js';
import { remoteLayerRef, type RemoteLayerRef } from './remote-labels.js';
import { BadBytesError, type RemoteFileSystem } from './remote-fs.js';
import { mountRemote } from './remote-mount.js';
import { LABEL_REMOTE, LABEL_TARGET_REF } from './types.js';

export interface RemoteSnapshotsOptions {
  remote: RemoteFileSystem;
  store: MetadataStore;
  log: Logger;
  timeoutMs: number;
  /** `<root>/snapshots/<id>`. */
  dirOf(id: number): string;
  now(): number;
  /** A layer was mounted for `rec` (its index proven once `proven` resolves, when given). */
  onMounted?(rec: SnapshotRecord, proven: Promise<void> | undefined): void;
}

export class RemoteSnapshots {
  /** Mounts in progress, by target: a second Prepare of the same layer waits for the first. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** Ids of remote snapshots this process has mounted. */
  private readonly mounted = new Set<number>();

  constructor(private readonly o: RemoteSnapshotsOptions) {}

  private fsDir(id: number): string {
    return join(this.o.dirOf(id), 'fs');
  }

  /** The mount of `target` in progress, if any (callers loop on it without awaiting when there is none). */
  pending(target: string): Promise<void> | undefined {
    return this.inflight.get(target);
  }

  /** True when `target` is already a committed remote snapshot on `parent`: Prepare can answer at once. */
  has(target: string, parent: string): boolean {
    const t = this.o.store.get(target);
    return t?.kind === 'committed' && t.labels[LABEL_TARGET_REF] === target && t.parent === parent;
  }

  /** Runs `attempt` as the in-flight mount of `target` (register synchronously, right after creating the key). */
  track(target: string, attempt: Promise<boolean>): Promise<boolean> {
    const settled = attempt.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.set(target, settled);
    return attempt.finally(() => {
      if (this.inflight.get(target) === settled) this.inflight.delete(target);
    });
  }

  /** Mounts the layer on active `rec` and commits it as the target: true on success, false = use it as is. */
  async prepare(
    rec: SnapshotRecord,
    layer: RemoteLayerRef,
    labels: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const fsDir = this.fsDir(rec.id);
    const t0 = this.o.now();
    const where = { key: rec.name, target: layer.target, image: layer.imageRef, layer: layer.layerDigest };
    let usage;
    try {
      usage = await mountRemote(this.o.remote, fsDir, layer, this.o.timeoutMs, signal);
    } catch (e) {
      this.o.log.warn(
        { ...where, reason: String(e) },
        'remote snapshot not prepared; falling back to ordinary',
      );
      return false;
    }
    try {
      const committed = this.o.store.commit({
        key: rec.name,
        name: layer.target,
        labels: { ...labels, [LABEL_REMOTE]: 'remote snapshot' },
        sizeBytes: usage.sizeBytes,
        inodes: usage.inodes,
        remote: true,
        nowMs: this.o.now(),
      });
      this.mounted.add(committed.id);
      this.onVerified(committed, usage.verified);
      this.o.onMounted?.(committed, usage.proven);
    } catch (e) {
      await this.o.remote.unmount(fsDir).catch(() => undefined);
      this.o.log.warn(
        { ...where, reason: String(e) },
        'remote snapshot not committed; falling back to ordinary',
      );
      return false;
    }
    this.o.log.info({ ...where, ms: this.o.now() - t0 }, 'remote snapshot prepared');
    return true;
  }

  /** A remote layer must serve before its dir is handed out as a lowerdir: an empty one would be silent loss. */
  async ensure(rec: SnapshotRecord, signal?: AbortSignal): Promise<void> {
    const fsDir = this.fsDir(rec.id);
    if (this.mounted.has(rec.id)) {
      try {
        await this.o.remote.check(fsDir, signal);
        return;
      } catch {
        this.mounted.delete(rec.id);
        await this.o.remote.unmount(fsDir).catch(() => undefined);
      }
    }
    const layer = remoteLayerRef(rec.labels);
    if (layer === undefined)
      throw new UnavailableError(
        `remote snapshot ${JSON.stringify(rec.name)} has no layer labels to mount from`,
      );
    try {
      const usage = await mountRemote(this.o.remote, fsDir, layer, this.o.timeoutMs, signal);
      this.mounted.add(rec.id);
      this.onVerified(rec, usage.verified);
      this.o.onMounted?.(rec, usage.proven);
    } catch (e) {
      throw new UnavailableError(`remote snapshot ${JSON.stringify(rec.name)} is unavailable: ${String(e)}`, {
        cause: e,
      });
    }
  }

  /**
   * A layer that fails its audit, or whose blob no repository gives right, no longer answers to its chain ID:
   * the snapshot is renamed out of containerd's way (children and running containers keep it by id), so the
   * next image with that chain is unpacked anew.
   */
  private onVerified(rec: SnapshotRecord, verified: Promise<void> | undefined): void {
    verified?.then(
      () => undefined,
      (e: unknown) => {
        if (!isFerryError(e, 'INTEGRITY')) {
          this.o.log.warn({ key: rec.name, err: String(e) }, 'remote snapshot audit did not finish');
          return;
        }
        const what =
          e instanceof BadBytesError ? 'remote snapshot failed: bytes' : 'remote snapshot failed its audit';
        const name = `ferry-quarantined/${rec.id}/${rec.name}`;
        try {
          this.o.store.rename(rec.name, name, this.o.now());
          this.o.log.error({ key: rec.name, quarantined: name, err: String(e) }, what);
        } catch (err) {
          this.o.log.error({ key: rec.name, err: String(err), cause: String(e) }, what);
        }
      },
    );
  }

  /** Unmounts a removed remote snapshot; throws if it may still be mounted (then its dir must stay). */
  async release(rec: SnapshotRecord): Promise<void> {
    this.mounted.delete(rec.id);
    await this.o.remote.unmount(this.fsDir(rec.id));
  }

  /** Unmounts whatever may sit on a dir no metadata refers to. */
  async releaseDir(dir: string): Promise<void> {
    await this.o.remote.unmount(join(dir, 'fs')).catch(() => undefined);
  }

  /** Unmounts every remote layer this process mounted. */
  async close(): Promise<void> {
    for (const rec of this.o.store.all()) {
      if (!this.mounted.delete(rec.id)) continue;
      await this.o.remote
        .unmount(this.fsDir(rec.id))
        .catch((e: unknown) =>
          this.o.log.warn({ key: rec.name, err: String(e) }, 'remote snapshot unmount failed at close'),
        );
    }
  }
}
