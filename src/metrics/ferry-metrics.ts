// FerryMetrics: the prom-client registry of every ferry_* metric, built once from the node's sources. Each metric
// family is one file in families/: event metrics observe the channels modules publish on (channels.ts), state
// metrics sample the sources at scrape time.
import { collectDefaultMetrics, Registry } from 'prom-client';
import { METRICS } from './families/index.js';
import type { MetricContext, MetricSources, Provider, ScrapedSources } from './metric.js';
import { ReadTracker } from './read-tracker.js';
import type { PrefetchSample } from './status-types.js';

export type { LayerFetchSample, MetricSources } from './metric.js';

export interface FerryMetricsOptions {
  /** A read in flight longer than this counts as hung. */
  hungReadMs: number;
  /** Layers given their own ferry_layer_fetched_ratio series at most (the rest only in the aggregate). */
  maxLayerSeries?: number;
  /** Node process metrics (RSS, event-loop lag, heap) under ferry_; default true. */
  processMetrics?: boolean;
  /** The node's state, sampled at scrape time. */
  sources?: MetricSources;
}

export class FerryMetrics {
  readonly registry = new Registry();
  /** Reads in flight and per-layer read counts (status reads these too). */
  readonly reads = new ReadTracker();
  private readonly sources: MetricSources;
  private readonly sampled: ScrapedSources;
  private readonly stops: Array<() => void> = [];
  /** Counts scrapes: a source feeding several metrics is asked once per scrape. */
  private generation = 0;

  constructor(o: FerryMetricsOptions) {
    const s = (this.sources = o.sources ?? {});
    const list = <T>(p: Provider<T[]> | undefined) => this.perScrape(async () => (await p?.()) ?? []);
    this.sampled = {
      tiers: this.perScrape(async () => s.tiers?.()),
      cache: list(s.cache),
      layers: list(s.layers),
      peers: list(s.peers),
      prefetch: list(s.prefetch),
    };
    this.stops.push(this.reads.observe());
    const ctx: MetricContext = {
      registry: this.registry,
      sources: this.sampled,
      reads: this.reads,
      hungReadMs: o.hungReadMs,
      maxLayerSeries: o.maxLayerSeries ?? 50,
      subscribe: (topic, listener) => this.stops.push(topic.subscribe(listener)),
    };
    for (const define of METRICS) define(ctx);
    if (o.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'ferry_' });
  }

  /** The prefetch jobs as the source reports them now (for status, outside any scrape). */
  async prefetchJobs(): Promise<PrefetchSample[]> {
    return (await this.sources.prefetch?.()) ?? [];
  }

  /** The text exposition format for /metrics. */
  scrape(): Promise<string> {
    this.generation++;
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops observing the event channels. */
  close(): void {
    for (const stop of this.stops.splice(0)) stop();
  }

  /**
   * prom-client runs every collect() of a scrape concurrently: metrics fed by one source share the call made for
   * the current scrape generation.
   */
  private perScrape<T>(get: () => Promise<T>): () => Promise<T> {
    let memo: { generation: number; value: Promise<T> } | undefined;
    return () => {
      const g = this.generation;
      if (memo?.generation !== g) memo = { generation: g, value: get() };
      return memo.value;
    };
  }
}
