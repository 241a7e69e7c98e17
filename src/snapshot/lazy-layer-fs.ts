// The RemoteFileSystem Ferry uses: resolves a layer's index (local store first, so a restart needs no registry
// round trip; else IndexProvider: registry artifact → TOC → build) and FUSE-mounts it over one shared chunk
// source stack. The only snapshot/ file that knows about FUSE, layers and registries.
import type { ChunkStore } from '../chunks/chunk-store.js';
import { UnavailableError, NotFoundError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { parseReference, withDigest, type ImageReference } from '../image/reference.js';
import type { IndexProvider, IndexOrigin } from '../index/provider.js';
import type { IndexStore } from '../index/index-store.js';
import { LayerReader, type ChunkReadHook } from '../layer/layer-reader.js';
import { LayerTree } from '../layer/layer-tree.js';
import { mountLayer, type MountedLayer } from '../fuse/mount.js';
import type { Logger } from '../log.js';
import type { RegistryClient } from '../registry/client.js';
import type { ChunkSource } from '../source/chunk-source.js';
import { composeSource, type ComposedSource } from '../source/compose.js';
import { fetchChunkFromOrigin } from '../source/origin.js';
import { OriginSource } from '../source/origin-source.js';
import { ReadAheadBudget } from '../layer/read-ahead-budget.js';
import type { ReadAheadSettings } from '../layer/read-ahead.js';
import type { RemoteLayerRef } from './remote-labels.js';
import type { RemoteFileSystem } from './remote-fs.js';
import type { SnapshotUsage } from './types.js';

export interface LazyLayerFsOptions {
  registry: RegistryClient;
  indexStore: IndexStore;
  provider: IndexProvider;
  chunks: ChunkStore;
  log: Logger;
  /** Concurrent origin chunk fetches (shared by every mounted layer). */
  concurrency: number;
  readDeadlineMs: number;
  attrTimeoutSec: number;
  entryTimeoutSec: number;
  /** Peers to ask before the registry (`[p2p]`); they may also fetch mounted layers' chunks from this node. */
  peers?: LayerPeers | undefined;
  /** Sequential read-ahead for every mounted layer, bounded in memory across all of them (`[readAhead]`). */
  readAhead?: ReadAheadConfig | undefined;
}

/** What the daemon needs of a P2P node (src/p2p/p2p-node.ts P2PNode fits). */
export interface LayerPeers {
  wrapOrigin(origin: ChunkSource): ChunkSource;
  register(indexes: readonly LayerIndex[], source: ChunkSource): () => void;
}

export type ReadAheadConfig = ReadAheadSettings & { enabled: boolean; memoryBytes: number };

// --- prefetch wiring: traces of daemon-mounted images (src/prefetch/mounted-images.ts fits) ---
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
// --- end prefetch wiring ---

// --- metrics wiring: read latency and how each layer's reads were served (src/metrics/read-tracker.ts fits) ---
export interface LayerReadObserver {
  /** A demand read starts; the returned function is called once when it ends. Must not throw. */
  onRead(layer: Digest, lengthBytes: number): (error: unknown, bytes?: number) => void;
  /** A demand read needs a chunk; `local` when the cache held it before the fetch. */
  onDemandChunk(layer: Digest, local: boolean): void;
}

export interface MountedLayerInfo {
  readonly mountpoint: string;
  readonly imageRef: string;
  readonly index: LayerIndex;
}
// --- end metrics wiring ---

export class LazyLayerFs implements RemoteFileSystem {
  readonly source: ComposedSource;
  private readonly log: Logger;
  /** Where each layer's blob can be read: blobs are content-addressed, so any repository holding it will do. */
  private readonly refs = new Map<Digest, ImageReference>();
  private readonly mounts = new Map<string, MountedLayer>();
  private tracer: LayerTracer | undefined; // prefetch wiring
  private observer: LayerReadObserver | undefined; // metrics wiring
  private readonly infos = new Map<string, MountedLayerInfo>(); // metrics wiring
  private readonly readAhead: { settings: ReadAheadSettings; budget: ReadAheadBudget } | undefined;
  /** Withdraws each mounted layer from what peers may fetch through this node. */
  private readonly unregisterPeers = new Map<string, () => void>();

  constructor(private readonly o: LazyLayerFsOptions) {
    this.log = o.log.child({ component: 'lazy-fs' });
    const origin = { blobFor: (index: LayerIndex) => this.blobFor(index), fetch: fetchChunkFromOrigin };
    const peerFirst = o.peers?.wrapOrigin(new OriginSource(origin));
    this.source = composeSource({
      store: o.chunks,
      origin,
      ...(peerFirst !== undefined ? { originOverride: peerFirst } : {}),
      concurrency: o.concurrency,
      log: this.log,
    });
    const ra = o.readAhead;
    this.readAhead =
      ra !== undefined && ra.enabled
        ? { settings: ra, budget: new ReadAheadBudget({ maxBytes: ra.memoryBytes }) }
        : undefined;
  }

  // --- prefetch wiring ---
  /** Records every later mount's reads through `tracer` (set before the first mount). */
  setTracer(tracer: LayerTracer): void {
    this.tracer = tracer;
  }

  /** Makes layers fetchable through `source` before (or without) their mount, e.g. for a prefetch hint. */
  addBlobRefs(ref: ImageReference, layers: readonly Digest[]): void {
    for (const d of layers) if (!this.refs.has(d)) this.refs.set(d, ref);
  }
  // --- end prefetch wiring ---

  // --- metrics wiring ---
  /** Reports every later mount's demand reads to `observer` (set before the first mount). */
  setReadObserver(observer: LayerReadObserver): void {
    this.observer = observer;
  }

  /** The layers served now, for status and metrics. */
  mountedLayers(): MountedLayerInfo[] {
    return [...this.infos.values()];
  }

  /** The shared source, with each demand chunk reported as local or fetched first. */
  private observedSource(): ChunkSource {
    const observer = this.observer;
    const inner = this.source.source;
    if (observer === undefined) return inner;
    const store = this.o.chunks;
    return {
      fetch: async (req, signal) => {
        const c = req.index.chunks[req.chunk];
        if (req.priority === 'demand' && c !== undefined)
          observer.onDemandChunk(req.index.layerDigest, await store.has(c.digest));
        return inner.fetch(req, signal);
      },
      promote: (req) => inner.promote?.(req),
    };
  }
  private readHook(observer: LayerReadObserver) {
    return (index: LayerIndex, lengthBytes: number) => observer.onRead(index.layerDigest, lengthBytes);
  }
  // --- end metrics wiring ---

  private blobFor(index: LayerIndex) {
    const ref = this.refs.get(index.layerDigest);
    if (ref === undefined) throw new NotFoundError(`no image reference known for layer ${index.layerDigest}`);
    return this.o.registry.blobReader(ref, index.layerDigest, index.compressedSize);
  }

  async mount(mountpoint: string, layer: RemoteLayerRef, signal?: AbortSignal): Promise<SnapshotUsage> {
    const ref = parseReference(layer.imageRef);
    const { index, origin } = await this.resolveIndex(ref, layer, signal);
    signal?.throwIfAborted();
    if (!this.refs.has(index.layerDigest)) this.refs.set(index.layerDigest, ref);
    const onChunkRead = this.tracer?.layerMounting({
      mountpoint,
      imageRef: layer.imageRef,
      manifestDigest: layer.manifestDigest,
      index,
    }); // prefetch wiring
    let mounted: MountedLayer;
    try {
      mounted = await mountLayer({
        mountpoint,
        tree: LayerTree.fromIndex(index),
        reader: new LayerReader({
          index,
          source: this.observedSource(), // metrics wiring
          ...(onChunkRead !== undefined ? { onChunkRead } : {}), // prefetch wiring
          ...(this.observer !== undefined ? { onRead: this.readHook(this.observer) } : {}), // metrics wiring
          ...(this.readAhead !== undefined ? { readAhead: this.readAhead } : {}),
        }),
        log: this.log,
        readDeadlineMs: this.o.readDeadlineMs,
        attrTimeoutSec: this.o.attrTimeoutSec,
        entryTimeoutSec: this.o.entryTimeoutSec,
      });
    } catch (e) {
      await this.tracer?.layerUnmounted(mountpoint); // prefetch wiring
      throw e;
    }
    if (signal?.aborted === true) {
      await mounted.unmount();
      await this.tracer?.layerUnmounted(mountpoint); // prefetch wiring
      signal.throwIfAborted();
    }
    this.mounts.set(mountpoint, mounted);
    this.infos.set(mountpoint, { mountpoint, imageRef: layer.imageRef, index }); // metrics wiring
    const unregister = this.o.peers?.register([index], this.source.source);
    if (unregister !== undefined) this.unregisterPeers.set(mountpoint, unregister);
    this.log.info({ mountpoint, layer: layer.layerDigest, index: origin }, 'lazy layer mounted');
    return { sizeBytes: index.compressedSize, inodes: index.entries.length };
  }

  private async resolveIndex(
    ref: ImageReference,
    layer: RemoteLayerRef,
    signal?: AbortSignal,
  ): Promise<{ index: LayerIndex; origin: IndexOrigin }> {
    const local = await this.o.indexStore.get(layer.layerDigest, signal);
    if (local !== undefined) return { index: local, origin: 'local' };
    const image = await this.o.registry.resolve(
      layer.manifestDigest !== undefined ? withDigest(ref, layer.manifestDigest) : ref,
      signal,
    );
    const desc = image.manifest.layers.find((l) => l.digest === layer.layerDigest);
    if (desc === undefined)
      throw new NotFoundError(
        `layer ${layer.layerDigest} is not in ${ref.toString()} (${image.manifestDigest})`,
      );
    // Only this layer: the others are asked for by their own Prepare calls (and may never be needed).
    const one = { ...image, manifest: { ...image.manifest, layers: [desc] } };
    const [provided] = await this.o.provider.forImage(one, signal !== undefined ? { signal } : {});
    if (provided === undefined) throw new UnavailableError(`no index for layer ${layer.layerDigest}`);
    return { index: provided.index, origin: provided.origin };
  }

  async check(mountpoint: string): Promise<void> {
    if (!this.mounts.has(mountpoint)) throw new UnavailableError(`no lazy layer mounted at ${mountpoint}`);
    return Promise.resolve();
  }

  async unmount(mountpoint: string): Promise<void> {
    const m = this.mounts.get(mountpoint);
    if (m === undefined) return;
    this.mounts.delete(mountpoint);
    this.infos.delete(mountpoint); // metrics wiring
    this.unregisterPeers.get(mountpoint)?.();
    this.unregisterPeers.delete(mountpoint);
    await m.unmount();
    await this.tracer?.layerUnmounted(mountpoint); // prefetch wiring: saves the trace after the image's last layer
  }

  /** Mountpoints currently served (for shutdown and status). */
  mountpoints(): string[] {
    return [...this.mounts.keys()];
  }

  async unmountAll(): Promise<void> {
    for (const mp of this.mountpoints()) await this.unmount(mp).catch(() => undefined);
  }
}
