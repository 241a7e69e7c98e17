// The daemon's operator surface: the metrics registry built over the node's parts, the /metrics endpoint and the
// status socket, and the DaemonStatus they serve.
import type { ChunkStore } from '../chunks/chunk-store.js';
import type { ResolvedConfig } from '../config/load.js';
import type { MountedLayerInfo, MountedLayers } from '../layer/mounted-layers.js';
import type { Logger } from '../log.js';
import type { P2PNode } from '../p2p/p2p-node.js';
import type { HintQueue } from '../prefetch/hint-queue.js';
import type { ChunkService } from '../source/chunk-service.js';
import type { Daemon } from './daemon.js';
import { FerryMetrics, type LayerFetchSample } from '../metrics/ferry-metrics.js';
import { startMetricsServer, startStatusServer, type RunningEndpoint } from '../metrics/http-endpoints.js';
import {
  STATUS_VERSION,
  type CacheSample,
  type DaemonStatus,
  type LayerStatus,
  type PeerSample,
  type TierSamples,
} from '../metrics/status-types.js';

export interface DaemonOpsOptions {
  config: ResolvedConfig;
  log: Logger;
  /** The node's chunk store, for the cache tiers. */
  chunks: ChunkStore;
  chunkService: ChunkService;
  /** The P2P node when `[p2p] enabled`. */
  peers: P2PNode | undefined;
  /** The lazy layers served now (absent when `[snapshotter] lazy = false`). */
  mounted: MountedLayers | undefined;
  /** The prefetch hint jobs, for their gauges. */
  jobs: HintQueue;
}

export interface DaemonOps {
  readonly metrics: FerryMetrics;
  readonly statusSocketPath: string;
  /** Starts the metrics endpoint (/readyz 503) and the status socket; call before Daemon.start. */
  start(): Promise<void>;
  /** The daemon is serving: status now describes it, /readyz answers 200. */
  ready(daemon: Daemon): void;
  status(): Promise<DaemonStatus>;
  close(): Promise<void>;
}

export function createDaemonOps(o: DaemonOpsOptions): DaemonOps {
  const { config, log } = o;
  const startedAt = new Date();
  const socketPath = config.paths.statusSocket;
  let daemon: Daemon | undefined;
  const endpoints: RunningEndpoint[] = [];

  const tiers = async (): Promise<TierSamples> => {
    const s = o.chunkService.stats();
    return Promise.resolve({
      memory: s.memory,
      disk: s.disk,
      peer: s.peer ?? { chunks: 0, bytes: 0 },
      registry: s.origin,
    });
  };

  const cache = (): CacheSample[] => {
    const bounds: Record<string, number> = { memory: config.cache.memoryBytes, disk: config.cache.maxBytes };
    return Object.entries(o.chunks.tiers()).map(([tier, t]) => ({
      tier,
      bytes: t.bytes,
      ...(bounds[tier] !== undefined ? { maxBytes: bounds[tier] } : {}),
      entries: t.entries,
      evictions: t.evictions,
      hits: t.hits,
      misses: t.misses,
    }));
  };

  const localChunks = async (info: MountedLayerInfo): Promise<number> => {
    let n = 0;
    for (const c of info.index.chunks) if (await o.chunks.has(c.digest)) n++;
    return n;
  };

  const layerSamples = async (): Promise<Array<LayerFetchSample & { info: MountedLayerInfo }>> => {
    const infos = o.mounted?.list() ?? [];
    return Promise.all(
      infos.map(async (info) => ({
        info,
        digest: info.index.layerDigest,
        chunks: info.index.chunks.length,
        chunksLocal: await localChunks(info),
      })),
    );
  };

  const peers = (): PeerSample[] | undefined =>
    o.peers?.stats().peers.map((p) => ({
      peer: p.peer,
      state: p.penalised ? 'penalised' : p.up ? 'up' : 'down',
    }));

  const metrics = new FerryMetrics({
    hungReadMs: config.metrics.hungReadMs,
    maxLayerSeries: config.metrics.maxLayerSeries,
    sources: {
      tiers,
      cache,
      layers: layerSamples,
      peers: () => peers() ?? [],
      prefetch: () =>
        o.jobs.list().map((j) => ({
          image: j.imageRef,
          phase: j.phase.toLowerCase(),
          chunksDone: j.chunksDone,
          chunksTotal: j.chunksTotal,
          bytesDone: j.bytesDone,
          bytesTotal: j.bytesTotal,
          queueDepth: Math.max(0, j.chunksTotal - j.chunksDone - j.chunksCached - j.chunksFailed),
        })),
    },
  });

  const status = async (): Promise<DaemonStatus> => {
    const samples = await layerSamples();
    const layers: LayerStatus[] = samples.map(({ info, chunks, chunksLocal }) => {
      const r = metrics.reads.layerStats(info.index.layerDigest);
      return {
        digest: info.index.layerDigest,
        image: info.imageRef,
        mountpoint: info.mountpoint,
        format: info.index.format,
        codec: info.index.codec,
        compressedBytes: info.index.compressedSize,
        uncompressedBytes: info.index.uncompressedSize,
        chunks,
        chunksLocal,
        fetchedPercent: chunks === 0 ? 100 : Math.round((chunksLocal / chunks) * 1000) / 10,
        reads: r.reads,
        readBytes: r.readBytes,
        readErrors: r.readErrors,
        meanReadMs: r.reads === 0 ? 0 : Math.round((r.latencySumMs / r.reads) * 100) / 100,
        servedLocalChunks: r.chunksLocal,
        servedFetchedChunks: r.chunksFetched,
      };
    });
    const images = new Map<string, string[]>();
    for (const l of layers) images.set(l.image, [...(images.get(l.image) ?? []), l.digest]);
    const peerList = peers();
    return {
      version: STATUS_VERSION,
      pid: process.pid,
      startedAt: startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      socketPath: daemon?.paths.socketPath ?? '',
      snapshotRoot: daemon?.paths.root ?? '',
      lazy: daemon?.lazyLayers !== undefined,
      images: [...images].map(([ref, ls]) => ({ ref, layers: ls })),
      layers,
      tiers: await tiers(),
      cache: cache(),
      reads: {
        inFlight: metrics.reads.inFlight(),
        hung: metrics.reads.hung(config.metrics.hungReadMs),
        hungReadSeconds: config.metrics.hungReadMs / 1000,
        oldestMs: Math.round(metrics.reads.oldestMs()),
      },
      prefetch: await metrics.prefetchJobs(),
      ...(peerList !== undefined ? { peers: peerList } : {}),
      ...(daemon?.lazyLayers?.keepsMounts === true
        ? { holder: { pid: daemon.lazyLayers.holderPid, socketPath: config.paths.holderSocket } }
        : {}),
      rssBytes: process.memoryUsage.rss(),
    };
  };

  return {
    metrics,
    statusSocketPath: socketPath,
    async start() {
      endpoints.push(await startStatusServer({ socketPath, status, log }));
      if (!config.metrics.enabled) return;
      try {
        endpoints.push(
          await startMetricsServer({
            address: config.metrics.address,
            metrics,
            ready: () => daemon !== undefined,
            log,
          }),
        );
      } catch (e) {
        // Metrics must not keep the snapshotter (and so containerd) down: serve without them, loudly.
        log.error({ err: e }, 'metrics endpoint not started');
      }
    },
    ready(d) {
      daemon = d;
    },
    status,
    async close() {
      for (const e of endpoints.splice(0)) await e.close();
      metrics.close();
    },
  };
}
