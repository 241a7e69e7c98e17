// ferry_peers: known p2p peers by state (no series when p2p is off).
import { Gauge } from 'prom-client';
import type { MetricDefinition } from '../metric.js';

export const peerMetrics: MetricDefinition = (ctx) => {
  new Gauge({
    name: 'ferry_peers',
    help: 'Known p2p peers by state (absent when p2p is off)',
    labelNames: ['state'] as const,
    registers: [ctx.registry],
    async collect() {
      this.reset();
      for (const peer of await ctx.sources.peers()) this.inc({ state: peer.state });
    },
  });
};
