// Where a layer's index comes from, in order: the local store, an artifact published in the registry, an
// eStargz TOC (only when the manifest annotates its digest), or a build that streams the whole layer once.
import type { LayerIndex } from '../image/layer-index.js';
import { isDigest, sha256, type Digest } from '../image/digest.js';
import { layerCompression, type Descriptor } from '../image/manifest.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import { FerryError } from '../errors.js';
import { buildIndexFromStream } from './build-stream.js';
import { buildEstargzIndex } from './estargz.js';
import type { IndexStore } from './index-store.js';
import { buildZstdChunkedIndex, zstdChunkedManifestRef } from './zstd-chunked.js';
import { fetchPublishedIndex, findPublishedIndexes } from './publish.js';

export const TOC_DIGEST_ANNOTATION = 'containerd.io/snapshot/stargz/toc.digest';

export type IndexOrigin = 'local' | 'registry' | 'toc' | 'built';

export interface ProvidedIndex {
  readonly index: LayerIndex;
  readonly origin: IndexOrigin;
  readonly durationMs: number;
}

export interface IndexProviderOptions {
  store: IndexStore;
  registry: RegistryClient;
  log: Logger;
  chunkSizeBytes: number;
  spanBytes: number;
  /** Receives each chunk's bytes while a layer streams past during a build, so a build also warms the cache. */
  onBuiltChunk?: (digest: Digest, bytes: Buffer) => void;
}

export interface ForImageOptions {
  /** Ignore local and published indexes: build (or read the TOC) again. */
  rebuild?: boolean;
  signal?: AbortSignal;
  onLayerStart?: (layer: Descriptor, i: number) => void;
  onProgress?: (layer: Descriptor, compressedBytes: number) => void;
}

export class IndexProvider {
  private readonly log: Logger;

  constructor(private readonly options: IndexProviderOptions) {
    this.log = options.log.child({ component: 'index' });
  }

  /** One index per layer of the image, bottom first. */
  async forImage(image: ResolvedImage, opts: ForImageOptions = {}): Promise<ProvidedIndex[]> {
    const out: ProvidedIndex[] = [];
    let published: Map<Digest, Descriptor> | undefined;
    for (const [i, layer] of image.manifest.layers.entries()) {
      opts.onLayerStart?.(layer, i);
      const started = Date.now();
      const done = (index: LayerIndex, origin: IndexOrigin): ProvidedIndex => ({
        index,
        origin,
        durationMs: Date.now() - started,
      });
      if (opts.rebuild !== true) {
        const local = await this.options.store.get(layer.digest, opts.signal);
        if (local !== undefined) {
          out.push(done(local, 'local'));
          continue;
        }
        published ??= await findPublishedIndexes(this.options.registry, image, this.log, opts.signal);
        const remote = await this.fromRegistry(image, layer, published.get(layer.digest), opts.signal);
        if (remote !== undefined && !onlyStreamable(remote)) {
          await this.options.store.put(remote, opts.signal);
          out.push(done(remote, 'registry'));
          continue;
        }
      }
      const toc = await this.fromToc(image, layer, opts.signal);
      if (toc !== undefined) {
        await this.options.store.put(toc, opts.signal);
        out.push(done(toc, 'toc'));
        continue;
      }
      const built = await this.build(image, layer, opts);
      await this.options.store.put(built, opts.signal);
      out.push(done(built, 'built'));
    }
    return out;
  }

  private async fromRegistry(
    image: ResolvedImage,
    layer: Descriptor,
    blob: Descriptor | undefined,
    signal?: AbortSignal,
  ): Promise<LayerIndex | undefined> {
    if (blob === undefined) return undefined;
    try {
      return await fetchPublishedIndex(this.options.registry, image.ref, blob, layer.digest, signal);
    } catch (e) {
      // A bad artifact costs a rebuild, never a failed mount.
      this.log.warn({ err: e, layer: layer.digest }, 'published index unusable; building instead');
      return undefined;
    }
  }

  private async fromToc(
    image: ResolvedImage,
    layer: Descriptor,
    signal?: AbortSignal,
  ): Promise<LayerIndex | undefined> {
    const zstdChunked = zstdChunkedManifestRef(
      layer.annotations,
      `${image.ref.toString()}: layer ${layer.digest}`,
    );
    if (zstdChunked !== undefined && layerCompression(layer.mediaType) === 'zstd') {
      return buildZstdChunkedIndex({
        layerDigest: layer.digest,
        mediaType: layer.mediaType,
        blob: this.options.registry.blobReader(image.ref, layer.digest, layer.size),
        manifest: zstdChunked,
        ...(signal !== undefined ? { signal } : {}),
      });
    }
    const tocDigest = layer.annotations?.[TOC_DIGEST_ANNOTATION];
    // Without the annotation nothing vouches for the TOC, so such layers are built (and verified) instead.
    if (tocDigest === undefined || !isDigest(tocDigest) || layerCompression(layer.mediaType) !== 'gzip') {
      return undefined;
    }
    return buildEstargzIndex({
      layerDigest: layer.digest,
      mediaType: layer.mediaType,
      blob: this.options.registry.blobReader(image.ref, layer.digest, layer.size),
      tocDigest,
      ...(signal !== undefined ? { signal } : {}),
    });
  }

  private async build(image: ResolvedImage, layer: Descriptor, opts: ForImageOptions): Promise<LayerIndex> {
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) {
      throw new FerryError(
        'FORMAT',
        `${image.ref.toString()}: ${layer.digest} has non-layer type ${layer.mediaType}`,
      );
    }
    // zstd blobs are recognised by their magic inside buildIndexFromStream (zstd-stream.ts).
    const sink = this.options.onBuiltChunk;
    return buildIndexFromStream({
      layerDigest: layer.digest,
      mediaType: layer.mediaType,
      blob: this.options.registry.blobReader(image.ref, layer.digest, layer.size),
      chunkSizeBytes: this.options.chunkSizeBytes,
      spanBytes: this.options.spanBytes,
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
      ...(opts.onProgress !== undefined ? { onProgress: (n: number) => opts.onProgress?.(layer, n) } : {}),
      ...(sink !== undefined ? { onChunk: (_i: number, bytes: Buffer) => sink(sha256(bytes), bytes) } : {}),
    });
  }
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
