// Images a finished prefetch hint left ready for containerd's Prepare calls: the resolved manifest, its layers'
// chain IDs and trusted indexes, and each layer's tree, kept for a bounded time and number of layers.
import { setImmediate as yieldTick } from 'node:timers/promises';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { ImageReference } from '../image/reference.js';
import type { ImageLayers, ProvidedIndex } from '../index/provider.js';
import { LayerTree } from '../layer/layer-tree.js';
import type { Logger } from '../log.js';
import type { ResolvedImage } from '../registry/client.js';

export interface ReadyImagesOptions {
  /** How long a readied image is kept (`[prefetch] hintReadyMs`); 0 keeps nothing. */
  ttlMs: number;
  /** Layers kept at most over all images (`[prefetch] hintReadyMaxLayers`); the oldest images go first. */
  maxLayers: number;
  log: Logger;
}

/** One layer of a readied image, as MountIndexes needs it. */
export interface ReadyLayer {
  readonly image: ResolvedImage;
  readonly layers: ImageLayers;
  /** The layer's position in the manifest (bottom 0). */
  readonly position: number;
  readonly provided: ProvidedIndex;
}

interface Entry {
  readonly image: ResolvedImage;
  readonly layers: ImageLayers;
  readonly provided: readonly ProvidedIndex[];
  readonly trees: Map<LayerIndex, LayerTree>;
  readonly timer: NodeJS.Timeout;
}

/** Keyed by the reference as the client reached it (that decides trust) and the manifest it resolved to. */
const keyOf = (ref: ImageReference, manifestDigest: Digest): string => `${ref.toString()} ${manifestDigest}`;

export class ReadyImages {
  private readonly entries = new Map<string, Entry>();
  private layerCount = 0;
  private readonly log: Logger;

  constructor(private readonly o: ReadyImagesOptions) {
    this.log = o.log.child({ component: 'ready-images' });
  }

  /**
   * Keeps `image` ready: its layers' indexes now, their trees built one per tick after. Replaces an earlier
   * staging of the same image (the TTL starts again). Returns a release for a hint that is then cancelled.
   */
  stage(image: ResolvedImage, layers: ImageLayers, provided: readonly ProvidedIndex[]): () => void {
    if (this.o.ttlMs <= 0 || provided.length === 0 || provided.length > this.o.maxLayers) return () => {};
    const key = keyOf(image.ref, image.manifestDigest);
    this.drop(key);
    while (this.layerCount + provided.length > this.o.maxLayers) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.drop(oldest.value);
    }
    const timer = setTimeout(() => this.drop(key), this.o.ttlMs);
    timer.unref();
    const entry: Entry = { image, layers, provided, trees: new Map(), timer };
    this.entries.set(key, entry);
    this.layerCount += provided.length;
    void this.buildTrees(key, entry);
    this.log.info(
      { image: image.ref.toString(), manifest: image.manifestDigest, layers: provided.length },
      'image ready for Prepare',
    );
    return () => {
      if (this.entries.get(key) === entry) this.drop(key);
    };
  }

  /** Trees are CPU work on the event loop: one layer per tick, so FUSE callbacks are not held up. */
  private async buildTrees(key: string, entry: Entry): Promise<void> {
    for (const p of entry.provided) {
      await yieldTick();
      if (this.entries.get(key) !== entry) return;
      entry.trees.set(p.index, LayerTree.fromIndex(p.index));
    }
  }

  /** The hint's resolution of layer `layerDigest` of the image `ref` names at `manifestDigest`, if kept. */
  find(ref: ImageReference, manifestDigest: Digest, layerDigest: Digest): ReadyLayer | undefined {
    const e = this.entries.get(keyOf(ref, manifestDigest));
    if (e === undefined) return undefined;
    const position = e.provided.findIndex((p) => p.index.layerDigest === layerDigest);
    if (position < 0) return undefined;
    // provided is in manifest order for the whole image (the hint resolved every layer).
    return { image: e.image, layers: e.layers, position, provided: e.provided[position]! };
  }

  /** True when an image `ref` names is kept (at whichever manifest). */
  knows(ref: ImageReference): boolean {
    const prefix = `${ref.toString()} `;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }

  /** The tree built for `index` by a staging, if it is still kept. */
  tree(index: LayerIndex): LayerTree | undefined {
    for (const e of this.entries.values()) {
      const t = e.trees.get(index);
      if (t !== undefined) return t;
    }
    return undefined;
  }

  /** Images and layers kept now (status, tests). */
  counts(): { images: number; layers: number } {
    return { images: this.entries.size, layers: this.layerCount };
  }

  /** Forgets everything (daemon shutdown). */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.drop(key);
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    clearTimeout(e.timer);
    this.entries.delete(key);
    this.layerCount -= e.provided.length;
  }
}
