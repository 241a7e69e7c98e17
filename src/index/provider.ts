// Resolves each layer of an image to an index with a trust root that holds for that image, walking the index
// sources in order: what this node holds, a published index the image binds or a trusted key signed, the TOC the
// manifest annotates, and finally a build that streams the layer once. What a source returns is stored under its
// root (never under the layer digest alone), so no image can plant an index that another image then uses.
import type { Digest } from '../image/digest.js';
import { chainIds, parseDiffIds } from '../image/image-config.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { Descriptor } from '../image/manifest.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { AbortedError, FormatError } from '../errors.js';
import type { IndexOrigin, IndexSource, LayerContext, TrustedIndex } from './index-source.js';
import type { IndexStore } from './index-store.js';
import type { TrustedKey } from './signature.js';
import { ArtifactIndexSource } from './source-artifact.js';
import type { BuildIndexSource } from './source-build.js';
import { LocalIndexSource } from './source-local.js';
import { TocIndexSource } from './source-toc.js';
import { findTrustedIndexes, type TrustedBlob } from './trusted-artifacts.js';
import { PeerIndexSource, type PeerIndexes, type PeerIndexRequest } from './source-peer.js';
import { parseReference } from '../image/reference.js';
import { storeKey, type TrustRoot } from './trust.js';
import { buildTag, type BuildParams } from './build-params.js';
import { serializeIndex } from './serialize.js';

export type { IndexOrigin } from './index-source.js';

/**
 * Layers of one image resolved at once. A build streams its layer whole, so this bounds the streams too; with
 * no index anywhere the time to ready is the slowest layer's stream only when every layer streams from the
 * start (a build's memory is bounded by INDEX_LIMITS, not by this).
 */
const LAYER_CONCURRENCY = 16;
/** How long a resolved layer's index is kept for the Prepare calls of its image (containerd's come in seconds). */
const RESOLVED_KEEP_MS = 60_000;
export { TOC_DIGEST_ANNOTATION } from './toc-digest.js';

export interface ProvidedIndex {
  readonly index: LayerIndex;
  readonly root: TrustRoot;
  /** The store key the index is kept under on this node. */
  readonly key: string;
  readonly origin: IndexOrigin;
  readonly durationMs: number;
}

export interface IndexProviderOptions {
  store: IndexStore;
  registry: RegistryClient;
  log: Logger;
  chunkSizeBytes: number;
  spanBytes: number;
  /** Public keys whose signatures make a published index trusted (`[index] trustedKeys`). */
  trustedKeys?: readonly TrustedKey[] | undefined;
  /** The cluster: ask the layer's owner for the index it built before building here (`[p2p]`). */
  peers?: (() => PeerIndexes | undefined) | undefined;
  /** Receives each chunk's bytes while a layer streams past during a build, so a build also warms the cache. */
  onBuiltChunk?: (digest: Digest, bytes: Buffer) => void;
}

export interface ForImageOptions {
  /** Ignore local and published indexes: build (or read the TOC) again. */
  rebuild?: boolean;
  /** Resolve only these layers (by digest); the others may never be needed. Default: all, bottom first. */
  only?: readonly Digest[];
  /** The image's config facts when the caller already has them (saves fetching the config again). */
  layers?: ImageLayers;
  signal?: AbortSignal;
  onLayerStart?: (layer: Descriptor, i: number) => void;
  onProgress?: (layer: Descriptor, compressedBytes: number) => void;
}

/** The image's config facts a layer's trust depends on. */
export interface ImageLayers {
  readonly diffIds: readonly Digest[];
  readonly chainIds: readonly Digest[];
}

export class IndexProvider {
  private readonly log: Logger;
  private readonly sources: readonly IndexSource[];
  private readonly rebuildSources: readonly IndexSource[];
  /** Builds once per layer and diffID and stores the result itself (see buildOnce). */
  private readonly shared: IndexSource;
  /** What the builder builds with: built indexes are stored under its tag. */
  private readonly params: BuildParams;
  private readonly buildTag: string;

  constructor(private readonly options: IndexProviderOptions) {
    this.log = options.log.child({ component: 'index' });
    this.params = { chunkSizeBytes: options.chunkSizeBytes, spanBytes: options.spanBytes };
    this.buildTag = buildTag(this.params);
    const toc = new TocIndexSource(options.registry);
    const build: IndexSource = { origin: 'built', find: async (ctx) => (await this.builder()).find(ctx) };
    // One build per layer and diffID at a time, whether this node needs it or a peer asked for it.
    const shared: IndexSource = { origin: 'built', find: (ctx) => this.buildOnce(ctx) };
    this.shared = shared;
    this.sources = [
      new LocalIndexSource(options.store, this.buildTag),
      new ArtifactIndexSource(options.registry, this.log),
      toc,
      new PeerIndexSource(options.peers ?? (() => undefined), this.log),
      shared,
    ];
    this.rebuildSources = [toc, build];
  }

  private builderLoad: Promise<BuildIndexSource> | undefined;

  /** The builder's modules (tar, inflate, zstd) load on the first build: a mount from a published index needs none. */
  private builder(): Promise<BuildIndexSource> {
    return (this.builderLoad ??= import('./source-build.js').then(
      ({ BuildIndexSource }) =>
        new BuildIndexSource({
          registry: this.options.registry,
          ...this.params,
          onBuiltChunk: this.options.onBuiltChunk,
        }),
    ));
  }

  private readonly building = new Map<string, Promise<TrustedIndex>>();

  private buildOnce(ctx: LayerContext): Promise<TrustedIndex> {
    const key = buildKey(ctx.layer.digest, ctx.diffId);
    let p = this.building.get(key);
    if (p === undefined) {
      // Not the first caller's signal: a build others wait on must not end because one of them gave up.
      const built = this.builder().then((b) =>
        b.build(ctx.ref, ctx.layer, ctx.diffId, undefined, ctx.onProgress),
      );
      p = built;
      this.building.set(key, built);
      // Callers get the verified index as soon as it is built: serialising it into the store is off the path to
      // ready. The build leaves the map only once it is in the store: a peer asking in between would miss both
      // and stream the layer a second time.
      void built
        .then(
          (b) =>
            this.options.store
              .put(b.index, this.storeKey(b.root))
              .catch((e: unknown) =>
                this.log.warn({ err: String(e), layer: ctx.layer.digest }, 'index not stored'),
              ),
          () => undefined, // the callers of `p` get the build's failure
        )
        .finally(() => this.building.delete(key));
    }
    return ctx.signal === undefined ? p : raceSignal(p, ctx.signal);
  }

  /**
   * For a peer that asked this node: the serialized index of `req.layer` — the one held here (stored, or being
   * built), else the one its owner as this node sees it sends (`viaOwner`, absent when this node is that owner or
   * the request was already sent on once), else one built here once (digest and diffID verified) and stored
   * under its `built` root like any build. The hop exists because nodes whose live views differ pick different
   * owners; relaying to the owner this node sees keeps the cluster at one stream of the layer.
   */
  async indexForPeer(
    req: PeerIndexRequest,
    signal?: AbortSignal,
    viaOwner?: () => Promise<Buffer | undefined>,
  ): Promise<Buffer> {
    const key = this.storeKey({ kind: 'built', diffId: req.diffId });
    const local = await this.options.store.get(req.layer.digest, key, signal);
    if (local !== undefined) return serializeIndex(local);
    if (viaOwner !== undefined && !this.building.has(buildKey(req.layer.digest, req.diffId))) {
      const relayed = await viaOwner();
      if (relayed !== undefined) return relayed;
    }
    const ctx: LayerContext = {
      ref: parseReference(req.imageRef),
      layer: req.layer,
      diffId: req.diffId,
      trustedBlobs: () => Promise.resolve(new Map()),
      signal,
    };
    const { index } = await this.buildOnce(ctx);
    return serializeIndex(index);
  }

  /**
   * Streams layer `layerDigest` of `image` and builds its index, digest and diffID verified (what an audit of a
   * lazily served layer compares against); stored under its `built` root for every later image with the layer.
   */
  async buildVerified(
    image: ResolvedImage,
    layerDigest: Digest,
    signal?: AbortSignal,
  ): Promise<ProvidedIndex> {
    const i = image.manifest.layers.findIndex((l) => l.digest === layerDigest);
    const layer = image.manifest.layers[i];
    if (layer === undefined)
      throw new FormatError(`${layerDigest} is not a layer of ${image.ref.toString()}`);
    const { diffIds } = await this.layersOf(image, signal);
    const noTrusted = () => Promise.resolve(new Map<Digest, TrustedBlob>());
    const ctx: LayerContext = { ref: image.ref, layer, diffId: diffIds[i]!, trustedBlobs: noTrusted, signal };
    const started = Date.now();
    const { index, root } = await (await this.builder()).find(ctx);
    const key = this.storeKey(root);
    await this.options.store.put(index, key, signal);
    return { index, root, key, origin: 'built', durationMs: Date.now() - started };
  }

  private storeKey(root: TrustRoot): string {
    return storeKey(root, this.buildTag);
  }

  /** The image config's diffIDs and chain IDs, checked against the manifest's layer count. */
  async layersOf(image: ResolvedImage, signal?: AbortSignal): Promise<ImageLayers> {
    const where = `${image.ref.toString()} (${image.manifestDigest})`;
    const config = await this.options.registry.imageConfig(image, signal);
    const diffIds = parseDiffIds(config, where);
    if (diffIds.length !== image.manifest.layers.length) {
      throw new FormatError(
        `${where}: the config lists ${diffIds.length} diffIDs for ${image.manifest.layers.length} layers`,
      );
    }
    return { diffIds, chainIds: chainIds(diffIds) };
  }

  /** One index per layer of the image (or of `opts.only`), in manifest order. */
  async forImage(image: ResolvedImage, opts: ForImageOptions = {}): Promise<ProvidedIndex[]> {
    const { diffIds } = opts.layers ?? (await this.layersOf(image, opts.signal));
    let trusted: Promise<ReadonlyMap<Digest, TrustedBlob>> | undefined;
    const trustedBlobs = (): Promise<ReadonlyMap<Digest, TrustedBlob>> =>
      (trusted ??= findTrustedIndexes(
        this.options.registry,
        image,
        this.options.trustedKeys ?? [],
        this.log,
        opts.signal,
      ));
    const picked = image.manifest.layers
      .map((layer, i) => ({ layer, i }))
      .filter(({ layer }) => opts.only === undefined || opts.only.includes(layer.digest));
    // Layers resolve side by side (each is a round trip or more: a store read, a published index, a TOC, a
    // build); the answer keeps manifest order.
    const out = new Array<ProvidedIndex>(picked.length);
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < picked.length) {
        const k = next++;
        const { layer, i } = picked[k]!;
        opts.onLayerStart?.(layer, i);
        const ctx: LayerContext = {
          ref: image.ref,
          layer,
          diffId: diffIds[i]!,
          trustedBlobs,
          signal: opts.signal,
          onProgress: opts.onProgress !== undefined ? (n) => opts.onProgress?.(layer, n) : undefined,
        };
        try {
          out[k] = await (opts.rebuild === true
            ? this.resolveLayer(ctx, true)
            : this.resolveShared(image, ctx));
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    };
    const workers = Math.min(LAYER_CONCURRENCY, picked.length);
    await Promise.all(Array.from({ length: workers }, worker));
    return out;
  }

  /**
   * Starts resolving `only` of `image` in the background (containerd prepares an image's layers one at a time,
   * each after the one below: the first Prepare starts them all, so with no index anywhere every layer streams
   * from the start). The Prepare of each takes its layer's resolution, in flight or kept (resolveShared).
   */
  warm(image: ResolvedImage, layers: ImageLayers, only: readonly Digest[]): void {
    if (only.length === 0) return;
    this.forImage(image, { layers, only }).catch((e: unknown) =>
      this.log.debug({ image: image.ref.toString(), err: String(e) }, 'layer warm-up failed'),
    );
  }

  /**
   * Resolutions per image (as the client reached it: that decides what is trusted) and layer, in flight or done
   * within RESOLVED_KEEP_MS: a warmed layer's Prepare, and every later Prepare's warm-up of the layers above
   * it, take the same answer instead of loading the index from the store again (once per Prepare below it).
   */
  private readonly resolving = new Map<string, Promise<ProvidedIndex>>();

  private resolveShared(image: ResolvedImage, ctx: LayerContext): Promise<ProvidedIndex> {
    const key = `${image.ref.toString()} ${image.manifestDigest} ${ctx.layer.digest}`;
    let p = this.resolving.get(key);
    if (p === undefined) {
      // Not the first caller's signal, as in buildOnce: others may be waiting on the same layer.
      const started = this.resolveLayer({ ...ctx, signal: undefined }, false);
      this.resolving.set(key, (p = started));
      const forget = (): void => {
        if (this.resolving.get(key) === started) this.resolving.delete(key);
      };
      // A failure is not kept: the next caller tries again.
      started.then(() => setTimeout(forget, RESOLVED_KEEP_MS).unref(), forget);
    }
    return ctx.signal === undefined ? p : raceSignal(p, ctx.signal);
  }

  private async resolveLayer(ctx: LayerContext, rebuild: boolean): Promise<ProvidedIndex> {
    const started = Date.now();
    for (const source of rebuild ? this.rebuildSources : this.sources) {
      const found = await source.find(ctx);
      if (found === undefined) continue;
      // A single-frame zstd index from elsewhere would decode from byte 0 for every chunk: build instead.
      if (source.origin === 'registry' && onlyStreamable(found.index)) continue;
      const key = this.storeKey(found.root);
      if (source.origin !== 'local' && source !== this.shared) {
        await this.options.store.put(found.index, key, ctx.signal);
      }
      return { ...found, key, origin: source.origin, durationMs: Date.now() - started };
    }
    throw new FormatError(`no index source answered for layer ${ctx.layer.digest}`);
  }
}

/** One build per layer and the diffID it must hash to. */
function buildKey(layer: Digest, diffId: Digest): string {
  return `${layer} ${diffId}`;
}

function raceSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function abortError(signal: AbortSignal): AbortedError {
  return new AbortedError('index resolution aborted', { cause: signal.reason });
}

/**
 * A single-frame zstd layer has no restart points: every chunk read from the registry would decode from byte 0.
 * Building streams the layer once and keeps every chunk, so that is the cheaper way to a cold cache.
 */
function onlyStreamable(index: LayerIndex): boolean {
  return (
    index.format === 'zstd' && index.chunks.length > 1 && index.chunks.every((c) => c.compressedStart === 0)
  );
}
