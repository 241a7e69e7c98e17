// The index of last resort, and the one that needs no trust in anyone: stream the whole blob once, check its
// digest and its uncompressed digest (the config's diffID), and index what went past.
import { FerryError } from '../errors.js';
import { sha256, type Digest } from '../image/digest.js';
import { layerCompression } from '../image/manifest.js';
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

  async find(ctx: LayerContext): Promise<TrustedIndex> {
    const { image, layer } = ctx;
    if (layerCompression(layer.mediaType) === undefined) {
      throw new FerryError(
        'FORMAT',
        `${image.ref.toString()}: ${layer.digest} has non-layer type ${layer.mediaType}`,
      );
    }
    const sink = this.o.onBuiltChunk;
    // zstd blobs are recognised by their magic inside buildIndexFromStream (zstd-stream.ts).
    const index = await buildIndexFromStream({
      layerDigest: layer.digest,
      mediaType: layer.mediaType,
      blob: this.o.registry.blobReader(image.ref, layer.digest, layer.size),
      chunkSizeBytes: this.o.chunkSizeBytes,
      spanBytes: this.o.spanBytes,
      diffId: ctx.diffId,
      ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}),
      ...(ctx.onProgress !== undefined ? { onProgress: ctx.onProgress } : {}),
      ...(sink !== undefined ? { onChunk: (_i: number, bytes: Buffer) => sink(sha256(bytes), bytes) } : {}),
    });
    return { index, root: { kind: 'built', diffId: ctx.diffId } };
  }
}
