// Trust roots: why Ferry may serve a layer index. Every index is held, stored and served together with its root;
// an index whose root does not hold for the image being mounted is never used for it (see README "Trust model").
import { digestHex, type Digest } from '../image/digest.js';

export type TrustRoot =
  /** Streamed from the blob by this node: compressed digest = layer digest, uncompressed digest = diffID. */
  | { readonly kind: 'built'; readonly diffId: Digest }
  /** eStargz / zstd:chunked TOC whose digest the image manifest annotates on that layer. */
  | { readonly kind: 'toc'; readonly tocDigest: Digest }
  /** A published index reached through the image index the node was asked to run (it lists both). */
  | { readonly kind: 'bound'; readonly via: Digest; readonly blob: Digest }
  /** A published index whose artifact manifest carries a signature by a trusted key. */
  | { readonly kind: 'signed'; readonly keyId: string; readonly blob: Digest }
  /** Built by an authenticated cluster peer from the blob (the peer checked both digests). */
  | { readonly kind: 'peer'; readonly peer: string; readonly diffId: Digest };

/**
 * The part of a root that names the stored bytes. Built and peer indexes are functions of the blob and the build
 * parameters (`buildTag`, build-params.ts: peers of a cluster share them), so any image with that layer (and
 * diffID) may use them; TOC and artifact indexes, taken as published, only where the image names them.
 */
export function storeKey(root: TrustRoot, buildTag: string): string {
  switch (root.kind) {
    case 'built':
    case 'peer':
      return `built-${digestHex(root.diffId)}-${buildTag}`;
    case 'toc':
      return `toc-${digestHex(root.tocDigest)}`;
    case 'bound':
    case 'signed':
      return `blob-${digestHex(root.blob)}`;
  }
}

/** One line for logs and `ferry index`. */
export function describeRoot(root: TrustRoot): string {
  switch (root.kind) {
    case 'built':
      return 'built';
    case 'peer':
      return `built by peer ${root.peer}`;
    case 'toc':
      return 'TOC';
    case 'bound':
      return `bound (${root.via.slice(0, 19)})`;
    case 'signed':
      return `signed (key ${root.keyId})`;
  }
}
