// The seam every way of obtaining a layer index implements: given one layer of one image, return an index with
// the trust root that makes it servable for that image, or undefined (a miss: the resolver asks the next one).
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { Descriptor } from '../image/manifest.js';
import type { ImageReference } from '../image/reference.js';
import type { TrustedBlob } from './trusted-artifacts.js';
import type { TrustRoot } from './trust.js';

export type IndexOrigin = 'local' | 'registry' | 'toc' | 'built' | 'peer';

export interface TrustedIndex {
  readonly index: LayerIndex;
  readonly root: TrustRoot;
}

/** One layer being resolved, with what the image says about it. */
export interface LayerContext {
  /** Where the image was found: its repository holds the layer's blob. */
  readonly ref: ImageReference;
  readonly layer: Descriptor;
  /** The config's diffID for this layer: a built index must hash to it. */
  readonly diffId: Digest;
  /** Published index blobs this image may use (bound or signed), looked up once per image on first need. */
  trustedBlobs(): Promise<ReadonlyMap<Digest, TrustedBlob>>;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((compressedBytes: number) => void) | undefined;
}

export interface IndexSource {
  readonly origin: IndexOrigin;
  find(ctx: LayerContext): Promise<TrustedIndex | undefined>;
}
