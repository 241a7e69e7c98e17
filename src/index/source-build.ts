// The index of last resort, and the one that needs no trust in anyone: stream the whole blob once, check its
// digest and its uncompressed digest (the config's diffID), and index what went past.
import { FerryError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import { layerCompression, type Descriptor } from '../image/manifest.js';
import type { ImageReference } from '../image/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { buildIndexFromStream } from './build-stream.js';
import type { IndexSource, LayerContext, TrustedIndex } from './index-source.js';

export interface BuildIndexSourceOptions {
  registry: RegistryClient;
  chunkSizeBytes: number;
  spanBytes: number;
  /** Receives each chunk's bytes while a layer streams past during a build, so a build also warms the cache. */
  onBuiltChunk?: ((digest: Digest, bytes: Buffer) => void) | undefined;
}

export class BuildIndexSource implements IndexSource {
  readonly origin = 'built' as const;

  constructor(private readonly o: BuildIndexSourceOptions) {}

  find(ctx: LayerContext): Promise<TrustedIndex> {
    return this.build(ctx.ref, ctx.layer, ctx.diffId, ctx.signal, ctx.onProgress);
  }

  /** Streams `layer` from `ref`'s repository and indexes it, its digest and `diffId` verified. */
  async build(
    ref: ImageReference,
    layer: Descriptor,
    diffId: Digest,
    signal?: AbortSignal,
    onProgress?: (compressedBytes: number) => void,
  ): Promise<TrustedIndex> {
    if (layerCompression(layer.mediaType) === undefined) {
      throw new FerryError(
        'FORMAT',
        `${ref.toString()}: ${layer.digest} has non-layer type ${layer.mediaType}`,
      );
    }
    const sink = this.o.onBuiltChunk;
    // zstd blobs are recognised by their magic inside buildIndexFromStream (zstd-stream.ts).
    const index = await buildIndexFromStream({
      layerDigest: layer.digest,
      mediaType: layer.mediaType,
      blob: this.o.registry.blobReader(ref, layer.digest, layer.size),
      chunkSizeBytes: this.o.chunkSizeBytes,
      spanBytes: this.o.spanBytes,
      diffId,
      ...(signal !== undefined ? { signal } : {}),
      ...(onProgress !== undefined ? { onProgress } : {}),
      ...(sink !== undefined
        ? { onChunk: (_i: number, bytes: Buffer, digest: Digest) => sink(digest, bytes) }
        : {}),
    });
    return { index, root: { kind: 'built', diffId } };
  }
}
