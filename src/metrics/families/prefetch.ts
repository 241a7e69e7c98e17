// ferry_prefetch_jobs, ferry_prefetch_queue_depth_chunks, ferry_prefetch_bytes: the prefetch jobs the node runs.
import { Gauge } from 'prom-client';
import { sum, type MetricDefinition } from '../metric.js';

export const prefetchMetrics: MetricDefinition = (ctx) => {
  const registers = [ctx.registry];
  const jobs = ctx.sources.prefetch;
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
};
