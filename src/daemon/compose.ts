// The daemon's composition root: from the node's shared parts to a serving snapshotter, each part built once and
// handed to the parts that use it (no setters). Read top to bottom; stop() undoes it in reverse.
import type { NodeContext } from '../node/context.js';
import { MountedLayers } from '../layer/mounted-layers.js';
import { Daemon } from './daemon.js';
import { createDaemonOps, type DaemonOps } from './ops.js';
import { DaemonPrefetch } from './prefetch.js';
import { CONTAINERD_REDIAL_MS, socketSettled } from './redial-grace.js';

export interface ComposeDaemonOptions {
  /** Overrides `[fuse] spawnHolder` (`ferry daemon --no-spawn-holder`). */
  spawnHolder?: boolean | undefined;
}

export interface RunningDaemon {
  readonly daemon: Daemon;
  readonly ops: DaemonOps;
  /**
   * Resolves when the daemon may call itself ready (/readyz, systemd's READY=1): serving, on a socket that has
   * existed long enough for a containerd started before it to have dialled it again (redial-grace.ts).
   */
  readonly ready: Promise<void>;
  /** Stops the daemon, then its status and metrics endpoints (the node's parts are the caller's). */
  stop(): Promise<void>;
}

export async function startDaemon(
  node: NodeContext,
  opts: ComposeDaemonOptions = {},
): Promise<RunningDaemon> {
  const { config, log } = node;
  // 1. The node's chunk service, peers first when `[p2p] enabled` (this starts the P2P node).
  const chunkService = await node.chunkService();
  const peers = await node.p2p();
  // 2. The lazy layers served now: written by the lazy layer FS, read by status, metrics and prefetch.
  const mounted = config.snapshotter.lazy ? new MountedLayers() : undefined;
  // 3. Prefetch: traces of mounted images (the lazy layers' tracer) and the hint queue, over the chunk service.
  const prefetch = new DaemonPrefetch({
    config,
    log,
    registry: node.registry,
    provider: node.provider,
    chunkService,
    mounted,
  });
  // 4. The operator surface: metrics (sampling the parts above, observing the events modules publish), /metrics
  //    and the status socket (/readyz answers 503 until the daemon is ready).
  const ops = createDaemonOps({
    config,
    log,
    chunks: node.chunks,
    chunkService,
    peers,
    mounted,
    jobs: prefetch.jobs,
  });
  await ops.start();
  // 5. The snapshotter and its gRPC server, with everything above injected.
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({
      config,
      log,
      registry: node.registry,
      indexStore: node.indexStore,
      provider: node.provider,
      chunkService,
      mounted,
      prefetch,
      ...(opts.spawnHolder !== undefined ? { spawnHolder: opts.spawnHolder } : {}),
    });
  } catch (e) {
    await ops.close();
    throw e;
  }
  const ready = socketSettled(daemon.paths.socketPath, CONTAINERD_REDIAL_MS).then((waitedMs) => {
    if (waitedMs > 0)
      log.info({ waitedMs }, 'snapshots socket is new: ready once containerd can have redialled');
    ops.ready(daemon);
  });
  return {
    daemon,
    ops,
    ready,
    async stop() {
      await daemon.stop();
      await ops.close();
    },
  };
}
