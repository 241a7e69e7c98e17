// eStargz and zstd:chunked layers carry their own TOC; it is used only when the manifest annotates its digest
// (the TOC readers verify the TOC against it), which is what binds the index to this image.
import { layerCompression } from '../image/manifest.js';
import type { RegistryClient } from '../registry/client.js';
import { buildEstargzIndex } from './estargz.js';
import type { IndexSource, LayerContext, TrustedIndex } from './index-source.js';
import { annotatedTocDigest } from './toc-digest.js';
import { buildZstdChunkedIndex, zstdChunkedManifestRef } from './zstd-chunked.js';

export class TocIndexSource implements IndexSource {
  readonly origin = 'toc' as const;

  constructor(private readonly registry: RegistryClient) {}

  async find(ctx: LayerContext): Promise<TrustedIndex | undefined> {
    const { ref, layer, signal } = ctx;
    const where = `${ref.toString()}: layer ${layer.digest}`;
    const tocDigest = annotatedTocDigest(layer, where);
    if (tocDigest === undefined) return undefined;
    const blob = this.registry.blobReader(ref, layer.digest, layer.size);
    const common = {
      layerDigest: layer.digest,
      mediaType: layer.mediaType,
      blob,
      ...(signal !== undefined ? { signal } : {}),
    };
    const zstd = zstdChunkedManifestRef(layer.annotations, where);
    const index =
      zstd !== undefined && layerCompression(layer.mediaType) === 'zstd'
        ? await buildZstdChunkedIndex({ ...common, manifest: zstd })
        : await buildEstargzIndex({ ...common, tocDigest });
    return { index, root: { kind: 'toc', tocDigest } };
  }
}
