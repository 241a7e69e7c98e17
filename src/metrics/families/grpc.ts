// ferry_grpc_requests_total, ferry_grpc_request_duration_seconds: snapshots API calls, observed on their channel.
import { Counter, Histogram } from 'prom-client';
import { grpcCall } from '../channels.js';
import type { MetricDefinition } from '../metric.js';

const RPC_BUCKETS_S = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60];

export const grpcMetrics: MetricDefinition = (ctx) => {
  const registers = [ctx.registry];
  const requests = new Counter({
    name: 'ferry_grpc_requests_total',
    help: 'Snapshots API calls by method and gRPC status code',
    labelNames: ['method', 'code'] as const,
    registers,
  });
  const seconds = new Histogram({
    name: 'ferry_grpc_request_duration_seconds',
    help: 'Snapshots API call latency by method',
    labelNames: ['method'] as const,
    buckets: RPC_BUCKETS_S,
    registers,
  });
  ctx.subscribe(grpcCall, (m) => {
    requests.inc({ method: m.method, code: m.code });
    seconds.observe({ method: m.method }, m.seconds);
  });
};
