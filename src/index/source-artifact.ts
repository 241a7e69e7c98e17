// Published indexes that this image may trust (bound through its image index, or signed by a trusted key): the
// blob is digest-verified, then validated like any other index.
import { FormatError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RegistryClient } from '../registry/client.js';
import type { IndexSource, LayerContext, TrustedIndex } from './index-source.js';
import { deserializeIndex } from './serialize.js';

const MAX_INDEX_BLOB_BYTES = 512 * 1024 * 1024;

export class ArtifactIndexSource implements IndexSource {
  readonly origin = 'registry' as const;

  constructor(
    private readonly registry: RegistryClient,
    private readonly log: Logger,
  ) {}

  async find(ctx: LayerContext): Promise<TrustedIndex | undefined> {
    const trusted = (await ctx.trustedBlobs()).get(ctx.layer.digest);
    if (trusted === undefined) return undefined;
    try {
      const { blob } = trusted;
      if (blob.size > MAX_INDEX_BLOB_BYTES)
        throw new FormatError(`index artifact for layer ${ctx.layer.digest} is ${blob.size} bytes; refusing`);
      const bytes = await this.registry.fetchBlob(ctx.ref, blob.digest, MAX_INDEX_BLOB_BYTES, ctx.signal);
      const index = deserializeIndex(bytes, ctx.layer.digest);
      if (index.compressedSize !== ctx.layer.size)
        throw new FormatError(
          `index says the layer is ${index.compressedSize} bytes, the manifest ${ctx.layer.size}`,
        );
      return { index, root: trusted.root };
    } catch (e) {
      // A bad artifact costs a rebuild, never a failed mount.
      this.log.warn({ err: e, layer: ctx.layer.digest }, 'published index unusable; building instead');
      return undefined;
    }
  }
}
