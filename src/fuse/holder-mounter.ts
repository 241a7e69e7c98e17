// Layers served through the FUSE holder (src/fuse/holder/), which keeps the mounts across daemon restarts: connects
// (starting a holder if none runs), adopts what a predecessor left, and re-connects when the holder dies.
import type { FuseTimings } from '../config/resolve.js';
import { UnavailableError } from '../errors.js';
import type { LayerReader } from '../layer/layer-reader.js';
import type { LayerTree } from '../layer/layer-tree.js';
import type { Logger } from '../log.js';
import { lazyUnmount } from '../os/unmount.js';
import type { HeldMount, HolderClient } from './holder/client.js';
import {
  adoptHeldLayer,
  canAdopt,
  mountHeldLayer,
  type HeldLayer,
  type HeldLayerOptions,
} from './raw/held-layer.js';
import { isStale } from './stale.js';

export interface HolderMounterOptions {
  /** Returns a client, starting a holder if none runs. */
  connect(signal?: AbortSignal): Promise<HolderClient>;
  log: Logger;
  timings: FuseTimings;
}

export class HolderMounter {
  readonly keepsMounts = true;
  private client: HolderClient | undefined;
  /** Mounts a predecessor left with the holder, by mountpoint, until adopted or released. */
  private readonly kept = new Map<string, HeldMount>();
  private closing = false;
  private onLost: (err?: Error) => void = () => undefined;

  constructor(private readonly o: HolderMounterOptions) {}

  get holderPid(): number | undefined {
    return this.client?.holderPid;
  }

  get snapshotsSocket(): { socket: string; target: string } | undefined {
    return this.client?.snapshots;
  }

  async start(onLost: (err?: Error) => void, signal?: AbortSignal): Promise<void> {
    this.onLost = onLost;
    const client = await this.connect(signal);
    for (const m of client.inherited) this.kept.set(m.mountpoint, m);
    if (this.kept.size > 0)
      this.o.log.info(
        { mounts: this.kept.size, holderPid: client.holderPid },
        'holder kept mounts from a predecessor',
      );
  }

  inherited(): string[] {
    return [...this.kept.keys()];
  }

  async mount(
    l: { mountpoint: string; imageRef: string; tree: LayerTree; reader: LayerReader },
    signal?: AbortSignal,
  ): Promise<HeldLayer> {
    const client = await this.connect(signal);
    const o: HeldLayerOptions = { client, log: this.o.log, ...l, timings: this.o.timings };
    const held = this.kept.get(l.mountpoint);
    this.kept.delete(l.mountpoint);
    if (held !== undefined) {
      if (canAdopt(held, l.tree)) return adoptHeldLayer({ ...o, held });
      // Another index would give the kernel's cached node ids other files: never serve it on that mount.
      this.o.log.warn(
        { mountpoint: l.mountpoint, layer: l.tree.index.layerDigest },
        'held mount does not match its index; remounting',
      );
      await client.unmount(held.id, signal);
    }
    if (await isStale(l.mountpoint)) await lazyUnmount(l.mountpoint, signal); // left by a holder that died
    return mountHeldLayer(o, signal);
  }

  async releaseInherited(mountpoint: string): Promise<boolean> {
    const held = this.kept.get(mountpoint);
    this.kept.delete(mountpoint);
    if (held === undefined) return false;
    await this.client?.unmount(held.id);
    return true;
  }

  async releaseUnclaimed(): Promise<void> {
    const client = this.client;
    for (const [mp, held] of this.kept) {
      this.kept.delete(mp);
      if (client === undefined) continue;
      await client
        .unmount(held.id)
        .then(() => this.o.log.info({ mountpoint: mp }, 'unclaimed held mount released'))
        .catch((e: unknown) =>
          this.o.log.warn({ mountpoint: mp, err: String(e) }, 'unclaimed held mount not released'),
        );
    }
  }

  async close(detach: () => Promise<void>): Promise<void> {
    this.closing = true;
    await detach();
    await this.client?.close();
    this.client = undefined;
  }

  private async connect(signal?: AbortSignal): Promise<HolderClient> {
    if (this.client !== undefined) return this.client;
    if (this.closing) throw new UnavailableError('FUSE holder link closed');
    const client = await this.o.connect(signal);
    client.onClose((err) => this.lost(client, err));
    this.client = client;
    return client;
  }

  /** The holder died: its mounts are dead (ENOTCONN); the next use of each re-mounts it through a new holder. */
  private lost(client: HolderClient, err?: Error): void {
    if (this.client !== client || this.closing) return;
    this.client = undefined;
    this.kept.clear();
    this.onLost(err);
    // It also kept containerd's socket: a new holder (the same command) takes it back now, not at the next mount.
    if (client.snapshots !== undefined)
      void this.connect().catch((e: unknown) =>
        this.o.log.error({ err: String(e) }, 'no new FUSE holder for the snapshots socket'),
      );
  }
}
