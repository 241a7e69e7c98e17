// ferry_chunks_served_total, ferry_chunk_bytes_served_total: chunks served per tier (memory, disk, peer, registry).
import { Counter } from 'prom-client';
import type { MetricDefinition } from '../metric.js';
import { TIERS } from '../status-types.js';

export const tierMetrics: MetricDefinition = (ctx) => {
  for (const [name, help, pick] of [
    ['ferry_chunks_served_total', 'Chunks served to reads and prefetch, by the tier that had them', 'chunks'],
    ['ferry_chunk_bytes_served_total', 'Chunk bytes served, by the tier that had them', 'bytes'],
  ] as const) {
    new Counter({
      name,
      help,
      labelNames: ['tier'] as const,
      registers: [ctx.registry],
      async collect() {
        const t = await ctx.sources.tiers();
        if (t === undefined) return;
        this.reset();
        for (const tier of TIERS) this.inc({ tier }, t[tier][pick]);
      },
    });
  }
};
