// The daemon's operator surface: the metrics registry and its providers, the read observer and gRPC hook handed to
// the Daemon, the /metrics endpoint and the status socket, and the DaemonStatus they serve.
import { holderSocketPath, type Daemon } from '../daemon.js';
import { FerryMetrics, type LayerFetchSample } from '../metrics/ferry-metrics.js';
import { startMetricsServer, startStatusServer, type RunningEndpoint } from '../metrics/http-endpoints.js';
import {
  STATUS_VERSION,
  statusSocketPath,
  type CacheSample,
  type DaemonStatus,
  type LayerStatus,
  type PeerSample,
  type TierSamples,
} from '../metrics/status-types.js';
import type { LayerReadObserver, MountedLayerInfo } from '../snapshot/lazy-layer-fs.js';
import type { CliContext } from './context.js';

export interface DaemonOps {
  readonly metrics: FerryMetrics;
  readonly readObserver: LayerReadObserver;
  readonly onGrpcCall: (method: string, code: string, seconds: number) => void;
  readonly statusSocketPath: string;
  /** Starts the metrics endpoint (/readyz 503) and the status socket; call before Daemon.start. */
  start(): Promise<void>;
  /** The daemon is serving: status and metrics now describe it, /readyz answers 200. */
  attach(daemon: Daemon): void;
  status(): Promise<DaemonStatus>;
  close(): Promise<void>;
}

export function createDaemonOps(ctx: CliContext): DaemonOps {
  const { config, log } = ctx;
  const metrics = new FerryMetrics({
    hungReadSeconds: config.metrics.hungReadSeconds,
    maxLayerSeries: config.metrics.maxLayerSeries,
  });
  const startedAt = new Date();
  const socketPath = config.daemon.statusSocketPath ?? statusSocketPath(config.daemon.runDir);
  let daemon: Daemon | undefined;
  const endpoints: RunningEndpoint[] = [];

  const p2pStats = async () => {
    if (!config.p2p.enabled) return undefined;
    try {
      return (await ctx.p2p())?.stats();
    } catch {
      return undefined; // p2p start failures are logged where p2p starts
    }
  };

  const tiers = async (): Promise<TierSamples> => {
    // p2p start failures are logged where p2p starts
    const s = await ctx.chunkService().then(
      (c) => c.stats(),
      () => undefined,
    );
    const zero = { chunks: 0, bytes: 0 };
    return {
      memory: s?.memory ?? zero,
      disk: s?.disk ?? zero,
      peer: s?.peer ?? zero,
      registry: s?.origin ?? zero,
    };
  };

  const cache = (): CacheSample[] => {
    const bounds: Record<string, number> = { memory: config.cache.memoryBytes, disk: config.cache.maxBytes };
    return Object.entries(ctx.chunks.tiers()).map(([tier, t]) => ({
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
    for (const c of info.index.chunks) if (await ctx.chunks.has(c.digest)) n++;
    return n;
  };

  const layerSamples = async (): Promise<Array<LayerFetchSample & { info: MountedLayerInfo }>> => {
    const infos = daemon?.lazyLayers?.mountedLayers() ?? [];
    return Promise.all(
      infos.map(async (info) => ({
        info,
        digest: info.index.layerDigest,
        chunks: info.index.chunks.length,
        chunksLocal: await localChunks(info),
      })),
    );
  };

  const peers = async (): Promise<PeerSample[] | undefined> =>
    (await p2pStats())?.peers.map((p) => ({
      peer: p.peer,
      state: p.penalised ? 'penalised' : p.up ? 'up' : 'down',
    }));

  metrics.setTierProvider(tiers);
  metrics.setCacheProvider(cache);
  metrics.setLayerProvider(layerSamples);
  metrics.setPeerProvider(async () => (await peers()) ?? []);

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
    const peerList = await peers();
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
        hung: metrics.reads.hung(config.metrics.hungReadSeconds * 1000),
        hungReadSeconds: config.metrics.hungReadSeconds,
        oldestMs: Math.round(metrics.reads.oldestMs()),
      },
      prefetch: await metrics.prefetchJobs(),
      ...(peerList !== undefined ? { peers: peerList } : {}),
      ...(daemon?.lazyLayers?.keepsMounts === true
        ? { holder: { pid: daemon.lazyLayers.holderPid, socketPath: holderSocketPath(config) } }
        : {}),
      rssBytes: process.memoryUsage.rss(),
    };
  };

  const readObserver: LayerReadObserver = {
    onRead: (layer, lengthBytes) => metrics.reads.start(layer, lengthBytes),
    onDemandChunk: (layer, local) => metrics.reads.chunk(layer, local),
  };

  return {
    metrics,
    readObserver,
    onGrpcCall: (method, code, seconds) => metrics.observeGrpc(method, code, seconds),
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
    attach(d) {
      daemon = d;
      const jobs = d.prefetch?.jobs;
      if (jobs !== undefined)
        metrics.registerPrefetch(() =>
          jobs.list().map((j) => ({
            image: j.imageRef,
            phase: j.phase.toLowerCase(),
            chunksDone: j.chunksDone,
            chunksTotal: j.chunksTotal,
            bytesDone: j.bytesDone,
            bytesTotal: j.bytesTotal,
            queueDepth: Math.max(0, j.chunksTotal - j.chunksDone - j.chunksCached - j.chunksFailed),
          })),
        );
    },
    status,
    async close() {
      for (const e of endpoints.splice(0)) await e.close();
    },
  };
}
