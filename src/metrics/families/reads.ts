// ferry_read_duration_seconds, ferry_read_bytes_total: on-demand reads of lazy layers, observed on the read channels.
import { Counter, Histogram } from 'prom-client';
import { performance } from 'node:perf_hooks';
import { readEnd, readStart, type LayerReadMessage } from '../channels.js';
import type { MetricDefinition } from '../metric.js';

const READ_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const readMetrics: MetricDefinition = (ctx) => {
  const registers = [ctx.registry];
  const seconds = new Histogram({
    name: 'ferry_read_duration_seconds',
    help: 'Latency of on-demand file reads served by the lazy layers (FUSE reads), by outcome',
    labelNames: ['outcome'] as const,
    buckets: READ_BUCKETS_S,
    registers,
  });
  const bytes = new Counter({
    name: 'ferry_read_bytes_total',
    help: 'Bytes returned to on-demand file reads',
    registers,
  });
  const started = new WeakMap<LayerReadMessage, number>();
  ctx.subscribe(readStart, (m) => started.set(m, performance.now()));
  ctx.subscribe(readEnd, (m) => {
    const t0 = started.get(m);
    if (t0 === undefined) return;
    const ok = m.error === undefined;
    seconds.observe({ outcome: ok ? 'ok' : 'error' }, (performance.now() - t0) / 1000);
    if (ok && (m.bytes ?? 0) > 0) bytes.inc(m.bytes);
  });
};
