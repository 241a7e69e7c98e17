// The daemon's prefetch parts in one place: traces recorded from its lazily mounted images (the tracer handed to
// the lazy layers), the hint job queue over the node's chunk service (what a hint resolved stays ready for the
// Prepares: ReadyImages), and the hint API servers. start() (after restore) opens the API; stop() comes first.
import type { ResolvedConfig } from '../config/load.js';
import type { IndexProvider } from '../index/provider.js';
import type { MountedLayers } from '../layer/mounted-layers.js';
import type { Logger } from '../log.js';
import { HintQueue } from '../prefetch/hint-queue.js';
import { hintRunner } from '../prefetch/hint-runner.js';
import { MountedImages } from '../prefetch/mounted-images.js';
import { ReadyImages } from '../prefetch/ready-images.js';
import { TraceStore } from '../prefetch/trace-store.js';
import type { RegistryClient } from '../registry/client.js';
import type { ChunkService } from '../source/chunk-service.js';
import { PrefetchServer, readTokenFile } from '../api/prefetch-server.js';

export interface DaemonPrefetchOptions {
  config: ResolvedConfig;
  log: Logger;
  registry: RegistryClient;
  provider: IndexProvider;
  /** The node's chunk service: hints and traced mounts fetch through it, into the node's store. */
  chunkService: ChunkService;
  /** The layers the snapshotter serves lazily (absent when `[snapshotter] lazy = false`: nothing to trace). */
  mounted?: MountedLayers | undefined;
}

export class DaemonPrefetch {
  readonly jobs: HintQueue;
  /** The lazy layers' tracer: records and prefetches each mounted image. */
  readonly images: MountedImages | undefined;
  /** What finished hints left ready for the lazy layers' Prepare calls. */
  readonly ready: ReadyImages;
  readonly socketPath: string | undefined;
  private server: PrefetchServer | undefined;

  constructor(private readonly o: DaemonPrefetchOptions) {
    const { config, log } = o;
    const settings = config.prefetch;
    const traces = new TraceStore({
      dir: config.paths.tracesDir,
      merge: { maxEntries: settings.maxTraceChunks },
      log,
    });
    const service = o.chunkService;
    // What the tracer of mounted images and the hint runner share: traces, the chunk service, the settings.
    const shared = {
      registry: o.registry,
      traces,
      source: service.source,
      cached: service.store,
      settings,
      registerBlobs: service.register.bind(service),
      log,
    };
    const mounted = o.mounted;
    this.images =
      mounted === undefined
        ? undefined
        : new MountedImages({
            ...shared,
            // Only indexes a mount trusted for its image: the store alone cannot say which image an index is for.
            indexes: { get: (d) => Promise.resolve(mounted.index(d)) },
            layerWaitMs: config.snapshotter.remoteTimeoutMs,
          });
    this.ready = new ReadyImages({
      ttlMs: settings.hintReadyMs,
      maxLayers: mounted === undefined ? 0 : settings.hintReadyMaxLayers,
      log,
    });
    this.jobs = new HintQueue({
      runner: hintRunner({ ...shared, provider: o.provider, ready: this.ready }),
      maxQueued: settings.maxQueuedHints,
      concurrency: settings.hintConcurrency,
      retainMs: settings.hintRetainMs,
      nodeBudgetBytes: settings.budgetBytes,
      hintRegistries: settings.hintRegistries,
      log,
    });
    this.socketPath = settings.hintApi ? config.paths.hintSocket : undefined;
  }

  /** Opens the hint API (`[prefetch] hintApi`). */
  async start(): Promise<void> {
    const settings = this.o.config.prefetch;
    if (this.socketPath === undefined) return;
    const token =
      settings.hintTokenFile !== undefined ? await readTokenFile(settings.hintTokenFile) : undefined;
    const server = new PrefetchServer({
      jobs: this.jobs,
      socketPath: this.socketPath,
      tcpAddress: settings.hintListen,
      token,
      log: this.o.log,
    });
    await server.start(); // cleans up after itself when it fails
    this.server = server;
  }

  /** Hints end, traces are saved. */
  async stop(drainMs: number): Promise<void> {
    await this.server?.stop(Math.min(drainMs, 2_000));
    await this.jobs.close();
    this.ready.clear();
    await this.images?.close();
  }
}
