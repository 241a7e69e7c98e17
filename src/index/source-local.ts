// Indexes this node already holds, under a root that holds for this image: built from the same blob and diffID,
// the TOC this manifest annotates, or a published blob this image's own index or a trusted signature names.
import type { IndexStore } from './index-store.js';
import type { IndexSource, LayerContext, TrustedIndex } from './index-source.js';
import { annotatedTocDigest } from './toc-digest.js';
import { storeKey, type TrustRoot } from './trust.js';

export class LocalIndexSource implements IndexSource {
  readonly origin = 'local' as const;

  /** `buildTag`: the parameters this node builds with; an index built with others is not found. */
  constructor(
    private readonly store: IndexStore,
    private readonly buildTag: string,
  ) {}

  async find(ctx: LayerContext): Promise<TrustedIndex | undefined> {
    const roots: TrustRoot[] = [{ kind: 'built', diffId: ctx.diffId }];
    const toc = annotatedTocDigest(ctx.layer, `layer ${ctx.layer.digest}`);
    if (toc !== undefined) roots.push({ kind: 'toc', tocDigest: toc });
    for (const root of roots) {
      const index = await this.store.get(ctx.layer.digest, storeKey(root, this.buildTag), ctx.signal);
      if (index !== undefined) return { index, root };
    }
    // Published blobs cost a registry round trip to trust; only then is the local copy of one usable.
    const trusted = (await ctx.trustedBlobs()).get(ctx.layer.digest);
    if (trusted === undefined) return undefined;
    const index = await this.store.get(ctx.layer.digest, storeKey(trusted.root, this.buildTag), ctx.signal);
    return index !== undefined ? { index, root: trusted.root } : undefined;
  }
}
