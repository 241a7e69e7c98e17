// FerryMetrics: the prom-client registry of every ferry_* metric. Event metrics (reads, gRPC) are observed as they
// happen; state (tiers, cache, layers, prefetch, peers) is sampled at scrape time (state-metrics.ts).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ReadTracker } from './read-tracker.js';
import {
  prefetchJobs,
  registerStateMetrics,
  type LayerFetchSample,
  type Provider,
  type StateProviders,
} from './state-metrics.js';
import type { CacheSample, PeerSample, PrefetchSample, TierSamples } from './status-types.js';

export type { LayerFetchSample };

export interface FerryMetricsOptions {
  /** A read in flight longer than this counts as hung. */
  hungReadSeconds: number;
  /** Layers given their own ferry_layer_fetched_ratio series at most (the rest only in the aggregate). */
  maxLayerSeries?: number;
  /** Node process metrics (RSS, event-loop lag, heap) under ferry_; default true. */
  processMetrics?: boolean;
}

const READ_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RPC_BUCKETS_S = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60];

export class FerryMetrics {
  readonly registry = new Registry();
  readonly reads: ReadTracker;
  private readonly providers: StateProviders = { prefetch: new Set() };
  private readonly grpcRequests: Counter<'method' | 'code'>;
  private readonly grpcSeconds: Histogram<'method'>;
  /** Counts scrapes: providers feeding several metrics are asked once per scrape. */
  private generation = 0;

  constructor(o: FerryMetricsOptions) {
    const registers = [this.registry];
    const readSeconds = new Histogram({
      name: 'ferry_read_duration_seconds',
      help: 'Latency of on-demand file reads served by the lazy layers (FUSE reads), by outcome',
      labelNames: ['outcome'] as const,
      buckets: READ_BUCKETS_S,
      registers,
    });
    const readBytes = new Counter({
      name: 'ferry_read_bytes_total',
      help: 'Bytes returned to on-demand file reads',
      registers,
    });
    const hungTotal = new Counter({
      name: 'ferry_reads_hung_total',
      help: 'On-demand reads that stayed in flight longer than metrics.hungReadSeconds (counted once each)',
      registers,
    });
    const reads = new ReadTracker({
      onDone: (s, ok, bytes) => {
        readSeconds.observe({ outcome: ok ? 'ok' : 'error' }, s);
        if (bytes > 0) readBytes.inc(bytes);
      },
      onHung: () => hungTotal.inc(),
    });
    this.reads = reads;
    new Gauge({
      name: 'ferry_reads_in_flight',
      help: 'On-demand reads in flight now',
      registers,
      collect() {
        this.set(reads.inFlight());
      },
    });
    new Gauge({
      name: 'ferry_reads_hung',
      help: 'On-demand reads in flight longer than metrics.hungReadSeconds now',
      registers,
      collect() {
        this.set(reads.hung(o.hungReadSeconds * 1000));
      },
    });
    registerStateMetrics(this.registry, this.providers, () => this.generation, o.maxLayerSeries ?? 50);
    this.grpcRequests = new Counter({
      name: 'ferry_grpc_requests_total',
      help: 'Snapshots API calls by method and gRPC status code',
      labelNames: ['method', 'code'] as const,
      registers,
    });
    this.grpcSeconds = new Histogram({
      name: 'ferry_grpc_request_duration_seconds',
      help: 'Snapshots API call latency by method',
      labelNames: ['method'] as const,
      buckets: RPC_BUCKETS_S,
      registers,
    });
    if (o.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'ferry_' });
  }

  /** Where per-tier served counts come from (the composed source's stats, plus p2p's peer tier). */
  setTierProvider(p: Provider<TierSamples>): void {
    this.providers.tiers = p;
  }

  setCacheProvider(p: Provider<CacheSample[]>): void {
    this.providers.cache = p;
  }

  setLayerProvider(p: Provider<LayerFetchSample[]>): void {
    this.providers.layers = p;
  }

  setPeerProvider(p: Provider<PeerSample[]>): void {
    this.providers.peers = p;
  }

  /** A prefetching component reports its jobs here at each scrape; call the returned function to stop. */
  registerPrefetch(p: Provider<PrefetchSample[]>): () => void {
    this.providers.prefetch.add(p);
    return () => this.providers.prefetch.delete(p);
  }

  prefetchJobs(): Promise<PrefetchSample[]> {
    return prefetchJobs(this.providers);
  }

  /** One finished snapshots API call (the api/ layer calls this; method names are a fixed set). */
  observeGrpc(method: string, code: string, seconds: number): void {
    this.grpcRequests.inc({ method, code });
    this.grpcSeconds.observe({ method }, seconds);
  }

  /** The text exposition format for /metrics. */
  scrape(): Promise<string> {
    this.generation++;
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
