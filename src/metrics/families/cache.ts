// ferry_cache_bytes, ferry_cache_capacity_bytes, ferry_cache_chunks, ferry_cache_evictions_total: the chunk cache tiers.
import { Counter, Gauge } from 'prom-client';
import type { MetricDefinition } from '../metric.js';
import type { CacheSample } from '../status-types.js';

export const cacheMetrics: MetricDefinition = (ctx) => {
  const registers = [ctx.registry];
  const cache = ctx.sources.cache;
  const gauge = (name: string, help: string, pick: (c: CacheSample) => number | undefined) =>
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
  gauge('ferry_cache_bytes', 'Bytes held by each chunk cache tier', (c) => c.bytes);
  gauge('ferry_cache_capacity_bytes', 'Configured bound of each chunk cache tier', (c) => c.maxBytes);
  gauge('ferry_cache_chunks', 'Chunks held by each chunk cache tier', (c) => c.entries);
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
};
