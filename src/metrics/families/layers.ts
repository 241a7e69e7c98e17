// ferry_layers_mounted, ferry_layer_chunks, ferry_layer_fetched_ratio: the mounted lazy layers and how much is local.
import { Gauge } from 'prom-client';
import { sum, type MetricDefinition } from '../metric.js';

export const layerMetrics: MetricDefinition = (ctx) => {
  const registers = [ctx.registry];
  const layers = ctx.sources.layers;
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
      for (const l of (await layers()).slice(0, ctx.maxLayerSeries))
        this.set({ layer: l.digest }, l.chunks === 0 ? 1 : l.chunksLocal / l.chunks);
    },
  });
};
