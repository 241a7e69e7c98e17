// The daemon's prefetch parts in one place: traces recorded from its lazily mounted images, the hint job queue
// over the same chunk source, and the hint API servers; started after restore, stopped first at shutdown.
import { join } from 'node:path';
import type { FerryConfig } from '../config/load.js';
import type { Digest } from '../image/digest.js';
import type { IndexStore } from '../index/index-store.js';
import type { IndexProvider } from '../index/provider.js';
import type { Logger } from '../log.js';
import { HintQueue } from '../prefetch/hint-queue.js';
import { hintRunner } from '../prefetch/hint-runner.js';
import { MountedImages } from '../prefetch/mounted-images.js';
import { TraceStore } from '../prefetch/trace-store.js';
import type { RegistryClient } from '../registry/client.js';
import type { LazyLayerFs } from '../snapshot/lazy-layer-fs.js';
import type { ChunkService } from '../source/chunk-service.js';
import { hintSocketPath } from './prefetch-client.js';
import { PrefetchServer, readTokenFile } from './prefetch-server.js';

export interface DaemonPrefetchOptions {
  config: Readonly<FerryConfig>;
  log: Logger;
  registry: RegistryClient;
  indexStore: IndexStore;
  provider: IndexProvider;
  /** The node's chunk service: hints and traced mounts fetch through it, into the node's store. */
  chunkService: ChunkService;
  /** The snapshotter's lazy layers (absent when `[snapshotter] lazy = false`). */
  lazyFs?: LazyLayerFs | undefined;
}

export interface DaemonPrefetch {
  readonly jobs: HintQueue;
  readonly images: MountedImages | undefined;
  readonly socketPath: string | undefined;
  stop(drainMs: number): Promise<void>;
}

export async function startDaemonPrefetch(o: DaemonPrefetchOptions): Promise<DaemonPrefetch> {
  const { config, log } = o;
  const settings = config.prefetch;
  const traces = new TraceStore({
    dir: join(config.daemon.stateDir, 'traces'),
    merge: { maxEntries: settings.maxTraceChunks },
    log,
  });
  const lazy = o.lazyFs;
  const service = o.chunkService;
  const registerBlobs = service.register.bind(service);
  const images =
    lazy === undefined
      ? undefined
      : new MountedImages({
          registry: o.registry,
          // Only indexes a mount trusted for its image: the store alone cannot say which image an index is for.
          indexes: {
            get: (d: Digest) =>
              Promise.resolve(lazy.mountedLayers().find((m) => m.index.layerDigest === d)?.index),
          },
          traces,
          source: service.source,
          cached: service.store,
          settings,
          registerBlobs,
          log,
          layerWaitMs: config.snapshotter.remoteTimeoutMs,
        });
  if (images !== undefined) lazy?.setTracer(images);
  const jobs = new HintQueue({
    runner: hintRunner({
      registry: o.registry,
      provider: o.provider,
      traces,
      source: service.source,
      cached: service.store,
      settings,
      registerBlobs,
      log,
    }),
    maxQueued: settings.maxQueuedHints,
    concurrency: settings.hintConcurrency,
    retainMs: settings.hintRetainMs,
    nodeBudgetBytes: settings.budgetBytes,
    hintRegistries: settings.hintRegistries,
    log,
  });
  let server: PrefetchServer | undefined;
  const socketPath = settings.hintApi ? hintSocketPath(config) : undefined;
  if (socketPath !== undefined) {
    const token =
      settings.hintTokenFile !== undefined ? await readTokenFile(settings.hintTokenFile) : undefined;
    server = new PrefetchServer({ jobs, socketPath, tcpAddress: settings.hintListen, token, log });
    try {
      await server.start();
    } catch (e) {
      await jobs.close();
      throw e;
    }
  }
  return {
    jobs,
    images,
    socketPath,
    async stop(drainMs: number) {
      await server?.stop(Math.min(drainMs, 2_000));
      await jobs.close();
      await images?.close();
    },
  };
}
