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
import { LayerReader } from '../layer/layer-reader.js';
import { LayerTree } from '../layer/layer-tree.js';
import { mountLayer, type MountedLayer } from '../fuse/mount.js';
import type { Logger } from '../log.js';
import type { RegistryClient } from '../registry/client.js';
import { composeSource, type ComposedSource } from '../source/compose.js';
import { fetchChunkFromOrigin } from '../source/origin.js';
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
}

export class LazyLayerFs implements RemoteFileSystem {
  readonly source: ComposedSource;
  private readonly log: Logger;
  /** Where each layer's blob can be read: blobs are content-addressed, so any repository holding it will do. */
  private readonly refs = new Map<Digest, ImageReference>();
  private readonly mounts = new Map<string, MountedLayer>();

  constructor(private readonly o: LazyLayerFsOptions) {
    this.log = o.log.child({ component: 'lazy-fs' });
    this.source = composeSource({
      store: o.chunks,
      origin: {
        blobFor: (index) => this.blobFor(index),
        fetch: fetchChunkFromOrigin,
      },
      concurrency: o.concurrency,
      log: this.log,
    });
  }

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
    const mounted = await mountLayer({
      mountpoint,
      tree: LayerTree.fromIndex(index),
      reader: new LayerReader({ index, source: this.source.source }),
      log: this.log,
      readDeadlineMs: this.o.readDeadlineMs,
      attrTimeoutSec: this.o.attrTimeoutSec,
      entryTimeoutSec: this.o.entryTimeoutSec,
    });
    if (signal?.aborted === true) {
      await mounted.unmount();
      signal.throwIfAborted();
    }
    this.mounts.set(mountpoint, mounted);
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
    await m.unmount();
  }

  /** Mountpoints currently served (for shutdown and status). */
  mountpoints(): string[] {
    return [...this.mounts.keys()];
  }

  async unmountAll(): Promise<void> {
    for (const mp of this.mountpoints()) await this.unmount(mp).catch(() => undefined);
  }
}
