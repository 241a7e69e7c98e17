// ferry_reads_in_flight, ferry_reads_hung, ferry_reads_hung_total: reads now, and those past metrics.hungReadMs.
import { Counter, Gauge } from 'prom-client';
import type { MetricDefinition } from '../metric.js';

export const readsInFlightMetrics: MetricDefinition = (ctx) => {
  const registers = [ctx.registry];
  const { reads, hungReadMs } = ctx;
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
    help: 'On-demand reads in flight longer than metrics.hungReadMs now',
    registers,
    collect() {
      this.set(reads.hung(hungReadMs));
    },
  });
  new Counter({
    name: 'ferry_reads_hung_total',
    help: 'On-demand reads that stayed in flight longer than metrics.hungReadMs (counted once each)',
    registers,
    collect() {
      reads.hung(hungReadMs); // counts the reads that became hung since the last look
      this.reset();
      this.inc(reads.hungTotal());
    },
  });
};
