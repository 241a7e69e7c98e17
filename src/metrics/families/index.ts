// Every metric family Ferry exports (a new metric: one file in this folder, one line here, one README row).
import type { MetricDefinition } from '../metric.js';
import { cacheMetrics } from './cache.js';
import { grpcMetrics } from './grpc.js';
import { layerMetrics } from './layers.js';
import { peerMetrics } from './peers.js';
import { prefetchMetrics } from './prefetch.js';
import { readMetrics } from './reads.js';
import { readsInFlightMetrics } from './reads-in-flight.js';
import { tierMetrics } from './tiers.js';

export const METRICS: readonly MetricDefinition[] = [
  readMetrics,
  readsInFlightMetrics,
  tierMetrics,
  cacheMetrics,
  layerMetrics,
  prefetchMetrics,
  peerMetrics,
  grpcMetrics,
];
