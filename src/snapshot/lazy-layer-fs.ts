// The RemoteFileSystem Ferry uses: takes a layer's trusted index from MountIndexes (mount-index.ts) and mounts
// it over the node's chunk service with the LayerMounter it is given (layer-mounter.ts: the engine is not its
// business), tracing and observing reads, and sharing mounted layers with peers.
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { IndexProvider } from '../index/provider.js';
import type { IndexStore } from '../index/index-store.js';
import { LayerReader, type ChunkReadHook } from '../layer/layer-reader.js';
import { LayerTree } from '../layer/layer-tree.js';
import { dataChunks, materialiseLayer } from '../layer/materialise.js';
import type { Logger } from '../log.js';
import type { RegistryClient } from '../registry/client.js';
import { fetchChunkPart, type ChunkRequest, type ChunkSource } from '../source/chunk-source.js';
import type { ChunkService } from '../source/chunk-service.js';
import { isFerryError, UnavailableError } from '../errors.js';
import { demandChunk } from '../metrics/channels.js';
import { parseReference } from '../image/reference.js';
import { ReadAheadBudget } from '../layer/read-ahead-budget.js';
import type { MountedLayers } from '../layer/mounted-layers.js';
import type { ReadAheadSettings } from '../layer/read-ahead.js';
import type { LayerMounter, ServedLayer } from './layer-mounter.js';
import { MountIndexes, type ReadyLayers } from './mount-index.js';
import type { RemoteLayerRef } from './remote-labels.js';
import { BadBytesError, type RemoteFileSystem } from './remote-fs.js';
import type { SnapshotUsage } from './types.js';

export interface LazyLayerFsOptions {
  registry: RegistryClient;
  indexStore: IndexStore;
  provider: IndexProvider;
  /** The node's chunk service: every mounted layer reads through it; mounted layers are shared with peers. */
  chunks: ChunkService;
  log: Logger;
  /** Puts each layer on its mountpoint (through the FUSE holder, or in this process). */
  mounter: LayerMounter;
  /** Sequential read-ahead for every mounted layer, bounded in memory across all of them (`[readAhead]`). */
  readAhead?: ReadAheadConfig | undefined;
  /** Prove layers served from a TOC or a published index against their diffID in the background (default on). */
  auditLazyLayers?: 'unsigned' | 'all' | 'off' | undefined;
  /** How long after the mount an audit starts (the start gets the link first). */
  auditDelayMs?: number | undefined;
  /** Records the reads of layers mounted after restore() (the daemon's prefetch of mounted images). */
  tracer?: LayerTracer | undefined;
  /** Where the layers served now are listed, for status, metrics and prefetch. */
  mounted?: MountedLayers | undefined;
  /** What finished prefetch hints left ready: indexes and trees a Prepare takes instead of making them. */
  ready?: (ReadyLayers & { tree(index: LayerIndex): LayerTree | undefined }) | undefined;
}

export type ReadAheadConfig = ReadAheadSettings & { enabled: boolean; memoryBytes: number };

/** Traces of daemon-mounted images (src/prefetch/mounted-images.ts fits). */
export interface LayerTracer {
  /** A layer is about to mount; returns the hook its reads report to. Must not throw. */
  layerMounting(l: {
    mountpoint: string;
    imageRef: string;
    manifestDigest?: Digest | undefined;
    index: LayerIndex;
  }): ChunkReadHook;
  /** The layer at `mountpoint` was unmounted (or its mount failed). */
  layerUnmounted(mountpoint: string): Promise<void>;
}

export class LazyLayerFs implements RemoteFileSystem {
  private readonly log: Logger;
  private readonly mounts = new Map<string, ServedLayer>();
  /** The tree each mount serves, for materialising it. */
  private readonly trees = new Map<string, LayerTree>();
  /** Set by restored(): re-mounts of running containers' layers are not an image start to trace. */
  private tracer: LayerTracer | undefined;
  private readonly readAhead: { settings: ReadAheadSettings; budget: ReadAheadBudget } | undefined;
  /** Withdraws each mounted layer from what peers may fetch through this node. */
  private readonly unregisterPeers = new Map<string, () => void>();
  /** Which index each mount serves, and the audits of unproven ones. */
  private readonly indexes: MountIndexes;

  constructor(private readonly o: LazyLayerFsOptions) {
    this.log = o.log.child({ component: 'lazy-fs' });
    this.indexes = new MountIndexes({
      registry: o.registry,
      indexStore: o.indexStore,
      provider: o.provider,
      log: this.log,
      auditLazyLayers: o.auditLazyLayers,
      auditDelayMs: o.auditDelayMs,
      ready: o.ready,
    });
    const ra = o.readAhead;
    this.readAhead =
      ra !== undefined && ra.enabled
        ? { settings: ra, budget: new ReadAheadBudget({ maxBytes: ra.memoryBytes }) }
        : undefined;
  }

  /**
   * The shared source, with each demand chunk published (demandChunk) as local or fetched first, and bytes that
   * no repository holding the layer gives right reported to `refused`.
   */
  private observedSource(refused: (e: unknown) => void): ChunkSource {
    const inner = this.o.chunks.source;
    const store = this.o.chunks.store;
    const observe = async (req: ChunkRequest): Promise<void> => {
      const c = req.index.chunks[req.chunk];
      if (req.priority === 'demand' && c !== undefined && demandChunk.active)
        demandChunk.publish({ layer: req.index.layerDigest, local: await store.has(c.digest) });
    };
    /** Integrity failures are reported; the caller still sees them. */
    const reported = async <T>(req: ChunkRequest, work: Promise<T>): Promise<T> => {
      try {
        return await work;
      } catch (e) {
        if (isFerryError(e, 'INTEGRITY')) refused(new BadBytesError(req.index.layerDigest, e));
        throw e;
      }
    };
    return {
      fetch: async (req, signal) => {
        await observe(req);
        return reported(req, inner.fetch(req, signal));
      },
      promote: (req) => inner.promote?.(req),
      fetchPart: async (req, from, to, signal) => {
        await observe(req);
        return reported(req, fetchChunkPart(inner, req, from, to, signal));
      },
    };
  }

  async mount(mountpoint: string, layer: RemoteLayerRef, signal?: AbortSignal): Promise<SnapshotUsage> {
    const t0 = Date.now();
    const ref = parseReference(layer.imageRef);
    const { index, origin, binding, readied } = await this.indexes.resolve(ref, layer, mountpoint, signal);
    const resolvedAt = Date.now();
    signal?.throwIfAborted();
    this.o.chunks.register(ref, [index]);
    const onChunkRead = this.tracer?.layerMounting({
      mountpoint,
      imageRef: layer.imageRef,
      manifestDigest: layer.manifestDigest,
      index,
    });
    // Containerd reuses this snapshot for every image with its chain ID: a layer whose blob comes back wrong
    // from every repository known to hold it is withdrawn from the chain (as a failed audit is), so the next
    // image with the chain prepares its own rather than reading through this one.
    let refused!: (e: unknown) => void;
    const badBytes = new Promise<never>((_, reject) => (refused = reject));
    badBytes.catch(() => undefined);
    let mounted: ServedLayer;
    let tree: LayerTree;
    let treeReady = false;
    try {
      const reader = new LayerReader({
        index,
        source: this.observedSource(refused), // a promise settles once: later refusals are no-ops
        ...(onChunkRead !== undefined ? { onChunkRead } : {}),
        publishReads: true,
        ...(this.readAhead !== undefined ? { readAhead: this.readAhead } : {}),
      });
      const built = readied === true ? this.o.ready?.tree(index) : undefined;
      treeReady = built !== undefined;
      tree = built ?? LayerTree.fromIndex(index);
      mounted = await this.o.mounter.mount({ mountpoint, imageRef: layer.imageRef, tree, reader }, signal);
    } catch (e) {
      await this.tracer?.layerUnmounted(mountpoint);
      throw e;
    }
    if (signal?.aborted === true) {
      await mounted.unmount();
      await this.tracer?.layerUnmounted(mountpoint);
      signal.throwIfAborted();
    }
    this.mounts.set(mountpoint, mounted);
    this.trees.set(mountpoint, tree);
    this.o.mounted?.add({ mountpoint, imageRef: layer.imageRef, index });
    this.unregisterPeers.set(mountpoint, this.o.chunks.share([index]));
    this.log.info(
      {
        mountpoint,
        layer: layer.layerDigest,
        index: origin,
        hinted: readied === true,
        treeReady,
        ms: Date.now() - t0,
        indexMs: resolvedAt - t0,
      },
      'lazy layer mounted',
    );
    const audit = binding.audited
      ? undefined
      : this.indexes.auditLater(ref, layer, index, mountpoint, binding, this.o.chunks.source);
    // An audit that passes says the index is right; bytes refused later still withdraw the snapshot.
    const verified = audit === undefined ? badBytes : Promise.race([audit.then(() => badBytes), badBytes]);
    return { sizeBytes: index.compressedSize, inodes: index.entries.length, verified, proven: audit };
  }

  /** Starts the mounter (the holder's mounts a predecessor left become known); before restore. */
  async start(signal?: AbortSignal): Promise<void> {
    await this.o.mounter.start((err) => this.allLost(err), signal);
  }

  /** Every mount died at once (the FUSE holder went away): the next use of each re-mounts it. */
  private allLost(err?: Error): void {
    const lost = [...this.mounts.keys()];
    for (const mp of lost) this.forget(mp);
    this.log.error(
      { err: err === undefined ? undefined : String(err), lost: lost.length },
      'FUSE holder went away',
    );
  }

  /** Mountpoints kept for us by another process: never stat them before they are adopted. */
  heldMountpoints(): string[] {
    return [...this.o.mounter.inherited(), ...(this.keepsMounts ? this.mounts.keys() : [])];
  }

  get holderPid(): number | undefined {
    return this.o.mounter.holderPid;
  }

  /** The snapshots socket the holder keeps across daemon restarts (the daemon serves on its `target`). */
  get holderSnapshotsSocket(): { socket: string; target: string } | undefined {
    return this.o.mounter.snapshotsSocket;
  }

  /**
   * After restore: unmounts what a predecessor left that no snapshot claims any more, and traces the mounts from
   * now on (those restore re-made serve running containers, not an image start).
   */
  async restored(): Promise<void> {
    this.tracer = this.o.tracer;
    await this.o.mounter.releaseUnclaimed();
  }

  /** True when stop should leave the mounts to the holder for the next daemon rather than unmount them. */
  get keepsMounts(): boolean {
    return this.o.mounter.keepsMounts;
  }

  /**
   * Stop for a restart: stops serving every held layer (answers in flight get `drainMs`), saves traces, and
   * disconnects; the holder keeps the mounts and replays what is unanswered to the next daemon.
   */
  async detachAll(drainMs: number): Promise<void> {
    this.indexes.stop();
    await this.o.mounter.close(async () => {
      const served = [...this.mounts.entries()];
      await Promise.all(served.map(async ([, m]) => m.detach?.(drainMs)));
      for (const [mp] of served) {
        this.forget(mp);
        await this.tracer?.layerUnmounted(mp); // the trace is saved as on unmount
      }
    });
  }

  private forget(mountpoint: string): void {
    this.mounts.delete(mountpoint);
    this.trees.delete(mountpoint);
    this.o.mounted?.delete(mountpoint);
    this.unregisterPeers.get(mountpoint)?.();
    this.unregisterPeers.delete(mountpoint);
  }

  async check(mountpoint: string): Promise<void> {
    if (!this.mounts.has(mountpoint)) throw new UnavailableError(`no lazy layer mounted at ${mountpoint}`);
    return Promise.resolve();
  }

  async materialise(
    mountpoint: string,
    dest: string,
    o: { fetchMissing: boolean },
    signal?: AbortSignal,
  ): Promise<'done' | 'incomplete'> {
    const tree = this.trees.get(mountpoint);
    if (tree === undefined) throw new UnavailableError(`no lazy layer mounted at ${mountpoint}`);
    if (!o.fetchMissing) {
      for (const id of dataChunks(tree)) {
        signal?.throwIfAborted();
        if (!(await this.o.chunks.store.has(tree.index.chunks[id]!.digest))) return 'incomplete';
      }
    }
    const r = await materialiseLayer({ tree, source: this.o.chunks.source, dest, background: true, signal });
    this.log.info({ mountpoint, dest, layer: tree.index.layerDigest, ...r }, 'layer materialised');
    return 'done';
  }

  holds(mountpoint: string): boolean {
    return this.heldMountpoints().includes(mountpoint);
  }

  async unmount(mountpoint: string): Promise<void> {
    const m = this.mounts.get(mountpoint);
    if (m === undefined) {
      await this.o.mounter.releaseInherited(mountpoint);
      return;
    }
    this.forget(mountpoint);
    await m.unmount();
    await this.tracer?.layerUnmounted(mountpoint); // saves the trace after the image's last layer
  }

  /** Mountpoints currently served (for shutdown and status). */
  mountpoints(): string[] {
    return [...this.mounts.keys()];
  }

  async unmountAll(): Promise<void> {
    this.indexes.stop();
    for (const mp of this.mountpoints()) await this.unmount(mp).catch(() => undefined);
  }
}
