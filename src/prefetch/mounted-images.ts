// MountedImages: tracing and prefetch for images whose layers a daemon mounts one by one (the snapshotter's
// lazy layers). Groups layers per image manifest, starts an ImagePrefetch with its first layer and hands it each
// later one as it mounts, feeds it every chunk read, and stops it (saving the trace) when the image's last layer unmounts.
import { performance } from 'node:perf_hooks';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { parseReference, withDigest, type ImageReference } from '../image/reference.js';
import type { ChunkReadHook } from '../layer/layer-reader.js';
import type { Logger } from '../log.js';
import type { RegistryClient } from '../registry/client.js';
import type { ChunkSource } from '../source/chunk-source.js';
import { findTrace, ImagePrefetch, type PrefetchSettings } from './image-prefetch.js';
import type { CachedCheck } from './prefetcher.js';
import type { TraceStore } from './trace-store.js';

/** One lazily mounted layer, as the snapshotter's labels describe it. */
export interface TracedLayer {
  mountpoint: string;
  imageRef: string;
  manifestDigest?: Digest | undefined;
  index: LayerIndex;
}

export interface MountedImagesOptions {
  registry: RegistryClient;
  /** Where mounted layers' indexes are kept (IndexStore fits). */
  indexes: { get(layerDigest: Digest, signal?: AbortSignal): Promise<LayerIndex | undefined> };
  traces: TraceStore;
  source: ChunkSource;
  cached?: CachedCheck;
  settings: PrefetchSettings;
  registerBlobs?: (ref: ImageReference, layers: readonly Digest[]) => void;
  log: Logger;
  /** Wait this long for an image's other layers to mount before planning with those there; default 30 s. */
  layerWaitMs?: number;
  /** Reads kept while the image is still being resolved; default 100 000. */
  maxBufferedReads?: number;
}

class ImageSession {
  readonly t0 = performance.now();
  readonly mountpoints = new Set<string>();
  readonly layers = new Map<Digest, LayerIndex>();
  readonly abort = new AbortController();
  prefetch: ImagePrefetch | undefined;
  running: Promise<unknown> | undefined;
  init: Promise<void> = Promise.resolve();
  private buffer: Array<[LayerIndex, number, number]> = [];
  private wake: (() => void) | undefined;
  readonly hook: ChunkReadHook;

  constructor(
    readonly first: TracedLayer,
    private readonly maxBuffered: number,
  ) {
    this.hook = (index, chunk) => {
      const t = performance.now() - this.t0;
      if (this.prefetch !== undefined) this.prefetch.onChunkRead(index, chunk, t);
      else if (this.buffer.length < this.maxBuffered) this.buffer.push([index, chunk, t]);
    };
  }

  add(l: TracedLayer): void {
    this.mountpoints.add(l.mountpoint);
    this.layers.set(l.index.layerDigest, l.index);
    this.wake?.();
  }

  /** Resolves on the next layer mount or after `ms`. */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  begin(prefetch: ImagePrefetch): void {
    this.prefetch = prefetch;
    for (const [index, chunk, t] of this.buffer) prefetch.onChunkRead(index, chunk, t);
    this.buffer = [];
    this.running = prefetch.start();
  }
}

export class MountedImages {
  private readonly o: MountedImagesOptions;
  private readonly log: Logger;
  private readonly sessions = new Map<string, ImageSession>();
  private readonly byMountpoint = new Map<string, ImageSession>();

  constructor(options: MountedImagesOptions) {
    this.o = options;
    this.log = options.log.child({ component: 'mounted-images' });
  }

  /** Called as a layer is about to be mounted; returns the hook for its LayerReader. Never throws. */
  layerMounting(l: TracedLayer): ChunkReadHook {
    const key = l.manifestDigest ?? l.imageRef;
    let s = this.sessions.get(key);
    if (s === undefined) {
      const created = new ImageSession(l, this.o.maxBufferedReads ?? 100_000);
      this.sessions.set(key, created);
      created.init = this.start(created).catch((e: unknown) => {
        if (!created.abort.signal.aborted)
          this.log.warn({ err: e, image: l.imageRef }, 'no trace recording or prefetch for this image');
      });
      s = created;
    }
    s.add(l);
    this.byMountpoint.set(l.mountpoint, s);
    return s.hook;
  }

  /** The layer at `mountpoint` is gone (unmounted, or its mount failed). */
  async layerUnmounted(mountpoint: string): Promise<void> {
    const s = this.byMountpoint.get(mountpoint);
    if (s === undefined) return;
    this.byMountpoint.delete(mountpoint);
    s.mountpoints.delete(mountpoint);
    if (s.mountpoints.size > 0) return;
    for (const [k, v] of this.sessions) if (v === s) this.sessions.delete(k);
    await this.stop(s);
  }

  /** Stops every session, saving what was recorded. */
  async close(): Promise<void> {
    const all = [...new Set(this.sessions.values())];
    this.sessions.clear();
    this.byMountpoint.clear();
    await Promise.all(all.map((s) => this.stop(s)));
  }

  /** Images with a session (manifest digest or reference), for status. */
  images(): string[] {
    return [...this.sessions.keys()];
  }

  private async stop(s: ImageSession): Promise<void> {
    s.abort.abort();
    await s.init;
    await s.prefetch?.stop().catch((e: unknown) => this.log.warn({ err: e }, 'saving the trace failed'));
    await s.running;
  }

  private async start(s: ImageSession): Promise<void> {
    const signal = s.abort.signal;
    const ref = parseReference(s.first.imageRef);
    const md = s.first.manifestDigest;
    const image = await this.o.registry.resolve(md !== undefined ? withDigest(ref, md) : ref, signal);
    const digests = image.manifest.layers.map((l) => l.digest);
    this.o.registerBlobs?.(image.ref, digests);
    // The trace does not depend on the layers: look it up (maybe in the registry) while they mount.
    const trace = this.o.settings.enabled
      ? findTrace({
          image,
          traces: this.o.traces,
          registry: this.o.settings.pullFromRegistry ? this.o.registry : undefined,
          log: this.log,
          signal,
        })
      : undefined;
    trace?.catch(() => undefined); // observed by the ImagePrefetch, or dropped with the session
    // Layers arrive one Prepare at a time: the prefetch starts with those there now, and each later one's share
    // of the trace is planned as it mounts (without a trace, the start set waits for them all, or the wait's end).
    const known = (d: Digest): LayerIndex | undefined => s.layers.get(d);
    const prefetch = new ImagePrefetch({
      image,
      indexes: digests.flatMap((d) => known(d) ?? []),
      source: this.o.source,
      ...(this.o.cached !== undefined ? { cached: this.o.cached } : {}),
      traces: this.o.traces,
      registry: this.o.registry,
      settings: this.o.settings,
      log: this.log,
      ...(trace !== undefined ? { trace } : {}),
      openLayers: true,
    });
    this.log.info(
      { image: image.ref.toString(), manifest: image.manifestDigest, layers: digests.length },
      'recording startup and prefetching',
    );
    s.begin(prefetch);
    const until = performance.now() + (this.o.layerWaitMs ?? 30_000);
    const found = new Map<Digest, LayerIndex>();
    for (;;) {
      for (const d of digests) {
        if (found.has(d)) continue;
        const ix = known(d) ?? (await this.o.indexes.get(d, signal));
        if (ix === undefined) continue;
        found.set(d, ix);
        prefetch.addLayer(ix);
      }
      if (found.size === new Set(digests).size || performance.now() >= until) break;
      await s.changed(Math.min(1000, until - performance.now()));
      signal.throwIfAborted();
    }
    prefetch.layersKnown(digests.flatMap((d) => found.get(d) ?? []));
  }
}
