// The sampled ferry_* metrics: chunk tiers, cache tiers, mounted layers, prefetch jobs and peers, each read from a
// provider at scrape time. Metrics fed by one provider share one provider call per scrape.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CacheSample, PeerSample, PrefetchSample, TierSamples } from './status-types.js';
import { TIERS } from './status-types.js';

export type Provider<T> = () => T | Promise<T>;

export interface LayerFetchSample {
  digest: string;
  chunks: number;
  chunksLocal: number;
}

/** Mutable: components register providers after the metrics exist. */
export interface StateProviders {
  tiers?: Provider<TierSamples>;
  cache?: Provider<CacheSample[]>;
  layers?: Provider<LayerFetchSample[]>;
  peers?: Provider<PeerSample[]>;
  readonly prefetch: Set<Provider<PrefetchSample[]>>;
}

export async function prefetchJobs(p: StateProviders): Promise<PrefetchSample[]> {
  return (await Promise.all([...p.prefetch].map(async (f) => f()))).flat();
}

/**
 * prom-client runs every collect() of a scrape concurrently: metrics fed by one provider share the call made
 * for the current scrape generation.
 */
function perScrape<T>(generation: () => number, get: () => Promise<T>): () => Promise<T> {
  let memo: { generation: number; value: Promise<T> } | undefined;
  return () => {
    const g = generation();
    if (memo?.generation !== g) memo = { generation: g, value: get() };
    return memo.value;
  };
}

const sum = <T>(xs: readonly T[], f: (x: T) => number): number => xs.reduce((a, x) => a + f(x), 0);

export function registerStateMetrics(
  registry: Registry,
  p: StateProviders,
  generation: () => number,
  maxLayerSeries: number,
): void {
  const registers = [registry];
  for (const [name, help, pick] of [
    ['ferry_chunks_served_total', 'Chunks served to reads and prefetch, by the tier that had them', 'chunks'],
    ['ferry_chunk_bytes_served_total', 'Chunk bytes served, by the tier that had them', 'bytes'],
  ] as const) {
    new Counter({
      name,
      help,
      labelNames: ['tier'] as const,
      registers,
      async collect() {
        const t = await p.tiers?.();
        if (t === undefined) return;
        this.reset();
        for (const tier of TIERS) this.inc({ tier }, t[tier][pick]);
      },
    });
  }

  const cache = perScrape(generation, async () => (await p.cache?.()) ?? []);
  const cacheGauge = (name: string, help: string, pick: (c: CacheSample) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['tier'] as const,
      registers,
      async collect() {
        this.reset();
        for (const c of await cache()) {
          const v = pick(c);
          if (v !== undefined) this.set({ tier: c.tier }, v);
        }
      },
    });
  cacheGauge('ferry_cache_bytes', 'Bytes held by each chunk cache tier', (c) => c.bytes);
  cacheGauge('ferry_cache_capacity_bytes', 'Configured bound of each chunk cache tier', (c) => c.maxBytes);
  cacheGauge('ferry_cache_chunks', 'Chunks held by each chunk cache tier', (c) => c.entries);
  new Counter({
    name: 'ferry_cache_evictions_total',
    help: 'Chunks evicted from each cache tier to stay within its bound',
    labelNames: ['tier'] as const,
    registers,
    async collect() {
      this.reset();
      for (const c of await cache()) this.inc({ tier: c.tier }, c.evictions);
    },
  });

  const layers = perScrape(generation, async () => (await p.layers?.()) ?? []);
  new Gauge({
    name: 'ferry_layers_mounted',
    help: 'Lazy layers mounted now',
    registers,
    async collect() {
      this.set((await layers()).length);
    },
  });
  new Gauge({
    name: 'ferry_layer_chunks',
    help: 'Chunks of all mounted lazy layers: total, and local (already fetched)',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const ls = await layers();
      this.set(
        { state: 'total' },
        sum(ls, (l) => l.chunks),
      );
      this.set(
        { state: 'local' },
        sum(ls, (l) => l.chunksLocal),
      );
    },
  });
  new Gauge({
    name: 'ferry_layer_fetched_ratio',
    help: "Fraction of each mounted layer's chunks that are local (the first metrics.maxLayerSeries layers)",
    labelNames: ['layer'] as const,
    registers,
    async collect() {
      this.reset();
      for (const l of (await layers()).slice(0, maxLayerSeries))
        this.set({ layer: l.digest }, l.chunks === 0 ? 1 : l.chunksLocal / l.chunks);
    },
  });

  const jobs = perScrape(generation, () => prefetchJobs(p));
  new Gauge({
    name: 'ferry_prefetch_jobs',
    help: 'Prefetch jobs known to the daemon, by phase',
    labelNames: ['phase'] as const,
    registers,
    async collect() {
      this.reset();
      for (const j of await jobs()) this.inc({ phase: j.phase });
    },
  });
  new Gauge({
    name: 'ferry_prefetch_queue_depth_chunks',
    help: 'Chunks waiting in prefetch queues',
    registers,
    async collect() {
      this.set(sum(await jobs(), (j) => j.queueDepth));
    },
  });
  new Gauge({
    name: 'ferry_prefetch_bytes',
    help: 'Bytes of current prefetch jobs: done and total planned',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      const js = await jobs();
      this.set(
        { state: 'done' },
        sum(js, (j) => j.bytesDone),
      );
      this.set(
        { state: 'total' },
        sum(js, (j) => j.bytesTotal),
      );
    },
  });

  new Gauge({
    name: 'ferry_peers',
    help: 'Known p2p peers by state (absent when p2p is off)',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      this.reset();
      for (const peer of (await p.peers?.()) ?? []) this.inc({ state: peer.state });
    },
  });
}
