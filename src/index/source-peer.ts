// Indexes built by the layer's owner in the cluster (rendezvous on the layer digest): the owner streams the layer
// once, checks its digest and diffID, and serves the index to every peer that asks, so a cluster streams each
// unmodified layer once instead of once per node. Peers are authenticated by the cluster secret; what this node
// can still check of the index against the image (layer digest, size, media type, diffID asked for) it checks.
import { FormatError } from '../errors.js';
import type { Digest } from '../image/digest.js';
import type { Descriptor } from '../image/manifest.js';
import type { Logger } from '../log.js';
import type { IndexSource, LayerContext, TrustedIndex } from './index-source.js';
import { deserializeIndex } from './serialize.js';

/** What the owner needs to build a layer's index: where the blob is, what it is, and what it must hash to. */
export interface PeerIndexRequest {
  readonly imageRef: string;
  readonly layer: Descriptor;
  readonly diffId: Digest;
  /** Sent on by a node that does not own the layer to the owner it sees: answered, never sent on again. */
  readonly forwarded?: boolean;
}

/** The cluster side (src/p2p/ implements it). */
export interface PeerIndexes {
  /**
   * The serialized index the layer's owner built, or undefined when this node is the owner, no owner is up, or
   * the owner failed: then this node builds it itself.
   */
  fetchIndex(
    req: PeerIndexRequest,
    signal?: AbortSignal,
  ): Promise<{ bytes: Buffer; peer: string } | undefined>;
}

export class PeerIndexSource implements IndexSource {
  readonly origin = 'peer' as const;

  constructor(
    private readonly peers: () => PeerIndexes | undefined,
    private readonly log: Logger,
  ) {}

  async find(ctx: LayerContext): Promise<TrustedIndex | undefined> {
    const peers = this.peers();
    if (peers === undefined) return undefined;
    const { layer, diffId } = ctx;
    const req = { imageRef: ctx.ref.toString(), layer, diffId };
    try {
      const got = await peers.fetchIndex(req, ctx.signal);
      if (got === undefined) return undefined;
      const index = deserializeIndex(got.bytes, layer.digest);
      if (index.compressedSize !== layer.size || index.mediaType !== layer.mediaType) {
        throw new FormatError(
          `peer ${got.peer} sent an index of a ${index.compressedSize}-byte ${index.mediaType} layer for a ` +
            `${layer.size}-byte ${layer.mediaType} one`,
        );
      }
      return { index, root: { kind: 'peer', peer: got.peer, diffId } };
    } catch (e) {
      // The owner's index is an optimisation: any trouble costs this node a build of its own, never a mount.
      this.log.warn({ err: e, layer: layer.digest }, 'index from the layer owner unusable; building here');
      return undefined;
    }
  }
}
