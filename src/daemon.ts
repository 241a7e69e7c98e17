// Composition root of `ferry daemon`: builds the snapshotter (metadata store, lazy layer FS, snapshot dirs) and
// the gRPC server from config and already-built shared parts, and owns the start and stop order.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FerryConfig } from './config/load.js';
import type { ChunkStore } from './chunks/chunk-store.js';
import type { IndexProvider } from './index/provider.js';
import type { IndexStore } from './index/index-store.js';
import type { Logger } from './log.js';
import type { RegistryClient } from './registry/client.js';
import { cleanStaleMounts } from './fuse/stale.js';
import { closeDecodePool } from './source/origin.js';
import { MetadataStore } from './snapshot/metadata-store.js';
import { Snapshotter } from './snapshot/snapshotter.js';
import { LazyLayerFs, type LayerPeers, type LayerReadObserver } from './snapshot/lazy-layer-fs.js';
import { claimSocketPath, SnapshotsServer } from './api/snapshots-server.js';
import { startDaemonPrefetch, type DaemonPrefetch } from './api/prefetch-daemon.js'; // prefetch wiring

export interface DaemonParts {
  config: Readonly<FerryConfig>;
  log: Logger;
  registry: RegistryClient;
  indexStore: IndexStore;
  provider: IndexProvider;
  chunks: ChunkStore;
  // --- metrics wiring (src/cli/daemon-ops.ts builds these) ---
  /** Observes demand reads of lazy layers; set before restore re-mounts them. */
  readObserver?: LayerReadObserver;
  /** One call per finished snapshots API call. */
  onGrpcCall?: (method: string, code: string, seconds: number) => void;
  // --- end metrics wiring ---
  /** The P2P node when `[p2p] enabled`: lazy layers ask peers before the registry and serve them. */
  peers?: LayerPeers | undefined;
}

export interface SnapshotterPaths {
  socketPath: string;
  root: string;
}

export function snapshotterPaths(config: Readonly<FerryConfig>): SnapshotterPaths {
  return {
    socketPath: config.snapshotter.socketPath ?? join(config.daemon.runDir, 'snapshotter.sock'),
    root: config.snapshotter.root ?? join(config.daemon.stateDir, 'snapshots'),
  };
}

/** containerd adds index=off when the overlay module has the parameter: lower dirs are shared by many mounts. */
async function overlayOptions(): Promise<string[]> {
  try {
    await access('/sys/module/overlay/parameters/index');
    return ['index=off'];
  } catch {
    return [];
  }
}

export class Daemon {
  private stopping: Promise<void> | undefined;

  private constructor(
    private readonly parts: DaemonParts,
    private readonly store: MetadataStore,
    private readonly lazyFs: LazyLayerFs | undefined,
    readonly snapshotter: Snapshotter,
    private readonly server: SnapshotsServer,
    readonly paths: SnapshotterPaths,
    readonly prefetch?: DaemonPrefetch, // prefetch wiring: hint API, traces of mounted images
  ) {}

  /** metrics wiring: the lazy layers (absent when `[snapshotter] lazy = false`), for status and metrics. */
  get lazyLayers(): LazyLayerFs | undefined {
    return this.lazyFs;
  }

  /** Start order: claim the socket, detach dead mounts, open metadata, re-mount remote snapshots, then serve. */
  static async start(parts: DaemonParts): Promise<Daemon> {
    const { config, log } = parts;
    const paths = snapshotterPaths(config);
    await claimSocketPath(paths.socketPath, log);
    await mkdir(paths.root, { recursive: true, mode: 0o700 });
    await cleanStaleMounts({ dir: paths.root, log });
    const store = new MetadataStore({ path: join(paths.root, 'metadata.db') });
    const lazyFs = config.snapshotter.lazy
      ? new LazyLayerFs({
          registry: parts.registry,
          indexStore: parts.indexStore,
          provider: parts.provider,
          chunks: parts.chunks,
          log,
          concurrency: config.registry.maxConcurrencyPerHost,
          readDeadlineMs: config.fuse.readDeadlineMs,
          attrTimeoutSec: config.fuse.attrTimeoutS,
          entryTimeoutSec: config.fuse.entryTimeoutS,
          peers: parts.peers,
          readAhead: config.readAhead,
        })
      : undefined;
    if (parts.readObserver !== undefined) lazyFs?.setReadObserver(parts.readObserver); // metrics wiring
    const snapshotter = new Snapshotter({
      root: paths.root,
      store,
      log,
      ...(lazyFs !== undefined ? { remote: lazyFs } : {}),
      remoteTimeoutMs: config.snapshotter.remoteTimeoutMs,
      overlayOptions: await overlayOptions(),
    });
    const server = new SnapshotsServer({
      socketPath: paths.socketPath,
      snapshotter,
      log,
      ...(parts.onGrpcCall !== undefined ? { onCall: parts.onGrpcCall } : {}), // metrics wiring
    });
    let prefetch: DaemonPrefetch | undefined; // prefetch wiring
    try {
      const restored = await snapshotter.restore();
      if (restored.restored + restored.failed > 0) log.info(restored, 'remote snapshots restored');
      // prefetch wiring: after restore, so re-mounted layers of running containers are not taken for a start
      prefetch = await startDaemonPrefetch({ ...parts, lazyFs });
      await server.start();
    } catch (e) {
      await prefetch?.stop(0); // prefetch wiring
      await snapshotter.close().catch(() => undefined);
      await lazyFs?.unmountAll();
      store.close();
      throw e;
    }
    log.info(
      { socket: paths.socketPath, root: paths.root, lazy: lazyFs !== undefined },
      'ferry daemon ready',
    );
    return new Daemon(parts, store, lazyFs, snapshotter, server, paths, prefetch);
  }

  /** Stop order: stop accepting and drain calls, unmount the FUSE layers we made, close metadata and workers. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { config, log } = this.parts;
      await this.prefetch?.stop(config.daemon.shutdownTimeoutMs); // prefetch wiring: hints end, traces saved
      await this.server.stop(config.daemon.shutdownTimeoutMs);
      await this.snapshotter.close();
      await this.lazyFs?.unmountAll();
      this.store.close();
      await closeDecodePool();
      log.info('ferry daemon stopped');
    })();
    return this.stopping;
  }
}
