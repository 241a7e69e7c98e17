// Which index a lazy mount serves, and why it may: a remount or adoption takes the index recorded for that
// snapshot; otherwise the image's chain ID must be the snapshot's target and the provider returns an index
// trusted for this image. Layers whose root does not prove their diffID are audited in the background.
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError, NotFoundError, UnavailableError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { withDigest, type ImageReference } from '../image/reference.js';
import type { IndexStore, MountBinding } from '../index/index-store.js';
import type { ImageLayers, IndexOrigin, IndexProvider, ProvidedIndex } from '../index/provider.js';
import type { TrustRoot } from '../index/trust.js';
import { auditLayer } from '../layer/layer-audit.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import type { ChunkSource } from '../source/chunk-source.js';
import type { RemoteLayerRef } from './remote-labels.js';

/** Layers a finished prefetch hint resolved for this image (src/prefetch/ready-images.ts fits). */
export interface ReadyLayers {
  /** True when some image `ref` names was readied (whichever manifest). */
  knows(ref: ImageReference): boolean;
  find(
    ref: ImageReference,
    manifestDigest: Digest,
    layerDigest: Digest,
  ): { image: ResolvedImage; layers: ImageLayers; position: number; provided: ProvidedIndex } | undefined;
}

export interface MountIndexesOptions {
  registry: RegistryClient;
  indexStore: IndexStore;
  provider: IndexProvider;
  log: Logger;
  /** Which roots are audited (see [snapshotter] auditLazyLayers). */
  auditLazyLayers?: 'unsigned' | 'all' | 'off' | undefined;
  /** How long after the mount an audit starts (the start gets the link first). */
  auditDelayMs?: number | undefined;
  /** What hints left ready: a Prepare of such a layer takes the hint's resolution instead of redoing it. */
  ready?: ReadyLayers | undefined;
}

export class MountIndexes {
  /** Ends background audits at shutdown: the next daemon audits what was left unproven. */
  private readonly auditAbort = new AbortController();

  constructor(private readonly o: MountIndexesOptions) {}

  /** The index the mount at `mountpoint` serves, with where it came from and whether it is proven. */
  async resolve(
    ref: ImageReference,
    layer: RemoteLayerRef,
    mountpoint: string,
    signal?: AbortSignal,
  ): Promise<{ index: LayerIndex; origin: IndexOrigin; binding: MountBinding; readied?: true }> {
    const store = this.o.indexStore;
    const recorded = await store.mountKey(mountpoint, layer.layerDigest, signal);
    if (recorded !== undefined) {
      const local = await store.get(layer.layerDigest, recorded.key, signal);
      if (local !== undefined) return { index: local, origin: 'local', binding: recorded };
    }
    // Without the manifest digest (ctr-remote sends none) the name is resolved here as below, once.
    const named =
      layer.manifestDigest === undefined && this.o.ready?.knows(ref) === true
        ? await this.o.registry.resolve(ref, signal)
        : undefined;
    const ready = this.readied(ref, layer, layer.manifestDigest ?? named?.manifestDigest);
    if (ready !== undefined) {
      const binding = { key: ready.key, audited: this.needsNoAudit(ready.root) };
      await store.setMountKey(mountpoint, layer.layerDigest, binding, signal);
      return { index: ready.index, origin: ready.origin, binding, readied: true };
    }
    const image = named ?? (await this.resolveImage(ref, layer.manifestDigest, signal));
    const i = image.manifest.layers.findIndex((l) => l.digest === layer.layerDigest);
    if (i < 0)
      throw new NotFoundError(
        `layer ${layer.layerDigest} is not in ${ref.toString()} (${image.manifestDigest})`,
      );
    // containerd reuses a committed snapshot for every image with its chain ID: the name must be the content's.
    const layers = await this.o.provider.layersOf(image, signal);
    if (layers.chainIds[i] !== layer.target) {
      throw new FerryError(
        'FAILED_PRECONDITION',
        `layer ${i + 1} of ${ref.toString()}: the snapshot is to be committed as ${layer.target}, but the image ` +
          `config's diffIDs make its chain ID ${layers.chainIds[i]}`,
      );
    }
    // containerd prepares the layers above this one next, one at a time, each after this one is mounted (it
    // asks for no layer it already has, and those above a missing one are missing too): start resolving this
    // one and them now, in one go (one lookup of the image's published indexes), so that with no index
    // anywhere every layer streams from the first Prepare on. Each Prepare takes its layer's resolution.
    this.o.provider.warm(
      image,
      layers,
      image.manifest.layers.slice(i).map((l) => l.digest),
    );
    const [provided] = await this.o.provider.forImage(image, {
      only: [layer.layerDigest],
      layers,
      ...(signal !== undefined ? { signal } : {}),
    });
    if (provided === undefined) throw new UnavailableError(`no index for layer ${layer.layerDigest}`);
    const binding = { key: provided.key, audited: this.needsNoAudit(provided.root) };
    await store.setMountKey(mountpoint, layer.layerDigest, binding, signal);
    return { index: provided.index, origin: provided.origin, binding };
  }

  /**
   * A layer served from a TOC or a published index must be proven to be the layer its diffID names, as
   * containerd's own unpack proves it: `auditDelayMs` after the mount the blob is streamed once (digest and
   * diffID checked), and the served tree and every file's bytes, read through `source`, are compared with it.
   * Rejects with an IntegrityError on the first difference.
   */
  async auditLater(
    ref: ImageReference,
    layer: RemoteLayerRef,
    index: LayerIndex,
    mountpoint: string,
    binding: MountBinding,
    source: ChunkSource,
  ): Promise<void> {
    const signal = this.auditAbort.signal;
    await sleep(this.o.auditDelayMs ?? 30_000, undefined, { signal, ref: false });
    const image = await this.resolveImage(ref, layer.manifestDigest, signal);
    const truth = await this.o.provider.buildVerified(image, layer.layerDigest, signal);
    await auditLayer({ served: index, truth: truth.index, source, signal });
    await this.o.indexStore.setMountKey(mountpoint, layer.layerDigest, { ...binding, audited: true }, signal);
    this.o.log.info(
      { mountpoint, layer: layer.layerDigest },
      'lazy layer audited: it is the layer its digests name',
    );
  }

  /**
   * The hint's resolution of this layer: the image as the client named it, at the manifest the Prepare pins (or
   * the name resolves to now), and the same chain check as the full path makes.
   */
  private readied(
    ref: ImageReference,
    layer: RemoteLayerRef,
    manifestDigest: Digest | undefined,
  ): ProvidedIndex | undefined {
    if (manifestDigest === undefined) return undefined;
    const r = this.o.ready?.find(ref, manifestDigest, layer.layerDigest);
    if (r === undefined) return undefined;
    if (r.layers.chainIds[r.position] !== layer.target) return undefined; // the full path reports the mismatch
    return r.provided;
  }

  stop(): void {
    this.auditAbort.abort();
  }

  /** A build (here, or by an authenticated cluster peer) is proof by itself; a trusted key is, unless `all`. */
  private needsNoAudit(root: TrustRoot): boolean {
    const policy = this.o.auditLazyLayers ?? 'unsigned';
    if (policy === 'off' || root.kind === 'built' || root.kind === 'peer') return true;
    return root.kind === 'signed' && policy === 'unsigned';
  }

  /**
   * The image as the client named it (a Ferry-enabled image index binds its index only when reached that way),
   * unless the name now points elsewhere than the manifest the client resolved: then that manifest by digest.
   */
  private async resolveImage(
    ref: ImageReference,
    manifestDigest: Digest | undefined,
    signal?: AbortSignal,
  ): Promise<ResolvedImage> {
    if (manifestDigest === undefined) return this.o.registry.resolve(ref, signal);
    const named = await this.o.registry.resolve(ref, signal).catch(() => undefined);
    if (named?.manifestDigest === manifestDigest) return named;
    return this.o.registry.resolve(withDigest(ref, manifestDigest), signal);
  }
}
