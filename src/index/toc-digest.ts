// The TOC digest an image manifest annotates on a layer (eStargz or zstd:chunked): what binds a TOC-derived index
// to the manifest. Undefined when the layer carries no usable annotation.
import { isDigest, type Digest } from '../image/digest.js';
import { layerCompression, type Descriptor } from '../image/manifest.js';
import { zstdChunkedManifestRef } from './zstd-chunked.js';

export const TOC_DIGEST_ANNOTATION = 'containerd.io/snapshot/stargz/toc.digest';

export function annotatedTocDigest(layer: Descriptor, where: string): Digest | undefined {
  const compression = layerCompression(layer.mediaType);
  if (compression === 'zstd') return zstdChunkedManifestRef(layer.annotations, where)?.checksum;
  const toc = layer.annotations?.[TOC_DIGEST_ANNOTATION];
  return compression === 'gzip' && toc !== undefined && isDigest(toc) ? toc : undefined;
}
