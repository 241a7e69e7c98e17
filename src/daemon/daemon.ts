// The daemon's lifecycle: builds the snapshotter (metadata store, lazy layer FS, snapshot dirs) and the gRPC
// server from parts the composition root (compose.ts) made, and owns the start and stop order.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedConfig } from '../config/load.js';
import type { IndexProvider } from '../index/provider.js';
import type { IndexStore } from '../index/index-store.js';
import type { MountedLayers } from '../layer/mounted-layers.js';
import type { Logger } from '../log.js';
import type { RegistryClient } from '../registry/client.js';
import { cleanStaleMounts } from '../fuse/stale.js';
import { ensureHolder } from '../fuse/holder/client.js';
import { HolderMounter } from '../fuse/holder-mounter.js';
import { NativeMounter } from '../fuse/native-mounter.js';
import type { LayerMounter } from '../snapshot/layer-mounter.js';
import type { ChunkService } from '../source/chunk-service.js';
import { MetadataStore } from '../snapshot/metadata-store.js';
import { Snapshotter } from '../snapshot/snapshotter.js';
import { LazyLayerFs } from '../snapshot/lazy-layer-fs.js';
import { claimSocketPath, SnapshotsServer } from '../api/snapshots-server.js';
import { activatedSocket } from '../api/inherited-socket.js';
import type { DaemonPrefetch } from './prefetch.js';
import { daemonSocketPath, type SnapshotterPaths } from './paths.js';

export interface DaemonParts {
  config: ResolvedConfig;
  log: Logger;
  registry: RegistryClient;
  indexStore: IndexStore;
  provider: IndexProvider;
  /** The node's chunk service (peers first when `[p2p] enabled`); its owner closes it after stop. */
  chunkService: ChunkService;
  /** Where lazy layers are listed while mounted (given when `[snapshotter] lazy`). */
  mounted?: MountedLayers | undefined;
  /** Traces and hints; started after restore, stopped first. Its `images` trace the lazy mounts. */
  prefetch: DaemonPrefetch;
  /** Overrides `[fuse] spawnHolder` (`ferry daemon --no-spawn-holder`). */
  spawnHolder?: boolean;
}

/** Where `ferry fuse-holder` is started from: this build's own CLI. */
const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

/**
 * How the holder mounter reaches the holder: connect, or start one (detached, so it outlives this process). A holder
 * this daemon starts also keeps the snapshots socket (`snapshotsSocket`), unless systemd already does.
 */
function holderLink(config: ResolvedConfig, log: Logger, spawn: boolean, snapshotsSocket?: string) {
  const socketPath = config.paths.holderSocket;
  const relay =
    snapshotsSocket === undefined
      ? []
      : ['--snapshots-socket', snapshotsSocket, '--snapshots-target', daemonSocketPath(snapshotsSocket)];
  const command = [
    process.execPath,
    FERRY_BIN,
    'fuse-holder',
    '--socket',
    socketPath,
    '--max-mounts',
    String(config.fuse.holderMaxMounts),
    '--orphan-timeout-ms',
    String(config.fuse.holderOrphanTimeoutMs),
    ...relay,
  ];
  return (signal?: AbortSignal) =>
    ensureHolder({
      socketPath,
      command: spawn ? command : [],
      log,
      // A holder run by a service manager may still be starting: give it longer than one we start ourselves.
      timeoutMs: spawn ? 10_000 : 60_000,
      ...(signal !== undefined ? { signal } : {}),
    });
}

/** The engine `[fuse] engine` names: the holder (`raw`: mounts outlive the daemon) or fuse-native in-process. */
function layerMounter(
  config: ResolvedConfig,
  log: Logger,
  spawn: boolean,
  snapshotsSocket?: string,
): LayerMounter {
  const timings = config.fuseTimings;
  const mlog = log.child({ component: 'lazy-fs' });
  return config.fuse.engine === 'raw'
    ? new HolderMounter({ connect: holderLink(config, log, spawn, snapshotsSocket), log: mlog, timings })
    : new NativeMounter({ log: mlog, timings });
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
  ) {}

  /** The lazy layers (absent when `[snapshotter] lazy = false`), for status. */
  get lazyLayers(): LazyLayerFs | undefined {
    return this.lazyFs;
  }

  /** Start order: claim the socket, detach dead mounts, open metadata, re-mount remote snapshots, then serve. */
  static async start(parts: DaemonParts): Promise<Daemon> {
    const { config, log } = parts;
    const paths: SnapshotterPaths = {
      socketPath: config.paths.snapshotterSocket,
      root: config.paths.snapshotRoot,
    };
    // Where containerd's socket lives across restarts: systemd's ferry.socket (accepting, each handshake answered,
    // since bin/ferry.js opened it), else the holder, else this process.
    const inherited = await activatedSocket();
    inherited?.useLogger(log);
    const holderUsed = config.snapshotter.lazy && config.fuse.engine === 'raw';
    // Fail early when another daemon serves: on containerd's path, or on our own behind a holder that keeps it.
    if (inherited === undefined)
      await claimSocketPath(holderUsed ? daemonSocketPath(paths.socketPath) : paths.socketPath, log);
    await mkdir(paths.root, { recursive: true, mode: 0o700 });
    const store = new MetadataStore({ path: join(paths.root, 'metadata.db') });
    const lazyFs = config.snapshotter.lazy
      ? new LazyLayerFs({
          registry: parts.registry,
          indexStore: parts.indexStore,
          provider: parts.provider,
          chunks: parts.chunkService,
          tracer: parts.prefetch.images,
          mounted: parts.mounted,
          log,
          mounter: layerMounter(
            config,
            log,
            parts.spawnHolder ?? config.fuse.spawnHolder,
            inherited === undefined ? paths.socketPath : undefined,
          ),
          readAhead: config.readAhead,
          auditLazyLayers: config.snapshotter.auditLazyLayers,
          auditDelayMs: config.snapshotter.auditDelayMs,
        })
      : undefined;
    try {
      // First the holder, so the mounts it kept for us are known: stat'ing one before we serve it would hang.
      await lazyFs?.start();
      await cleanStaleMounts({ dir: paths.root, log, skip: new Set(lazyFs?.heldMountpoints() ?? []) });
    } catch (e) {
      store.close();
      await inherited?.close();
      throw e;
    }
    const snapshotter = new Snapshotter({
      root: paths.root,
      store,
      log,
      ...(lazyFs !== undefined ? { remote: lazyFs } : {}),
      remoteTimeoutMs: config.snapshotter.remoteTimeoutMs,
      materialise: { policy: config.snapshotter.materialise, delayMs: config.snapshotter.materialiseDelayMs },
      overlayOptions: await overlayOptions(),
    });
    const kept = lazyFs?.holderSnapshotsSocket;
    const relayed = inherited === undefined && kept?.socket === paths.socketPath;
    const server = new SnapshotsServer({
      socketPath: relayed ? kept.target : paths.socketPath,
      ...(relayed ? { socketMode: 0o600 } : {}),
      ...(inherited !== undefined ? { inherited } : {}),
      snapshotter,
      log,
    });
    try {
      const restored = await snapshotter.restore();
      if (restored.restored + restored.failed > 0) log.info(restored, 'remote snapshots restored');
      // Traces start after restore: re-mounted layers of running containers are not an image start.
      await lazyFs?.restored();
      await parts.prefetch.start();
      await server.start();
    } catch (e) {
      await parts.prefetch.stop(0);
      // Held layers stay with the holder: running containers may use them, and the next start adopts them.
      if (lazyFs?.keepsMounts === true) await lazyFs.detachAll(0);
      await snapshotter.close().catch(() => undefined);
      await lazyFs?.unmountAll();
      store.close();
      await inherited?.close();
      throw e;
    }
    log.info(
      {
        socket: paths.socketPath,
        via: inherited !== undefined ? 'systemd socket' : relayed ? 'holder' : 'own socket',
        root: paths.root,
        lazy: lazyFs !== undefined,
        ...(lazyFs?.holderPid !== undefined ? { holderPid: lazyFs.holderPid } : {}),
      },
      'ferry daemon ready',
    );
    return new Daemon(parts, store, lazyFs, snapshotter, server, paths);
  }

  /**
   * Stop order: stop accepting and drain calls; leave held layers to the holder for the next daemon (or unmount
   * the fuse-native ones, which cannot outlive us); close metadata.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { config, log } = this.parts;
      await this.parts.prefetch.stop(config.daemon.shutdownTimeoutMs); // hints end, traces saved
      await this.server.stop(config.daemon.shutdownTimeoutMs);
      if (this.lazyFs?.keepsMounts === true) await this.lazyFs.detachAll(config.fuse.drainMs);
      await this.snapshotter.close();
      await this.lazyFs?.unmountAll();
      this.store.close();
      log.info('ferry daemon stopped');
    })();
    return this.stopping;
  }
}
