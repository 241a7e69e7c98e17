// composeSource: the standard stack part-read → dedupe → store-through → limit → verify → origin (optionally
// under a deadline), plus per-tier counters (memory / disk / origin) for metrics.
import type { Logger } from '../log.js';
import type { ChunkStore } from '../chunks/chunk-store.js';
import type { ChunkSource } from './chunk-source.js';
import { DedupeSource } from './dedupe.js';
import { DeadlineSource } from './deadline.js';
import { LimitSource, type PrefetchPressure } from './limit.js';
import { PartReadSource } from './part-read.js';
import { OriginSource, type OriginSourceOptions, type TierCounter } from './origin-source.js';
import { StoreThroughSource } from './store-through.js';
import { VerifySource } from './verify.js';

export interface ComposeSourceOptions {
  store: ChunkStore;
  origin: OriginSourceOptions;
  /** Concurrent origin fetches. */
  concurrency: number;
  log: Logger;
  /** When set, callers get DeadlineError after this long; the shared fetch still completes into the store. */
  deadlineMs?: number;
  /**
   * Used instead of the OriginSource under verify (p2p's peer-first source, which wraps its own origin);
   * dedupe, store-through, limit and verify stay above it. `origin` stats then stay zero.
   */
  originOverride?: ChunkSource;
  /** Holds prefetch back while the process is busy (CpuPressure); without it only the slot cap applies. */
  prefetchPressure?: PrefetchPressure;
}

export interface SourceTierStats {
  memory: TierCounter;
  disk: TierCounter;
  origin: TierCounter;
}

export interface ComposedSource {
  readonly source: ChunkSource;
  readonly dedupe: DedupeSource;
  readonly limit: LimitSource;
  readonly verify: VerifySource;
  readonly origin: OriginSource;
  stats(): SourceTierStats;
}

export function composeSource(options: ComposeSourceOptions): ComposedSource {
  const origin = new OriginSource({ store: options.store, ...options.origin });
  const verify = new VerifySource({ next: options.originOverride ?? origin });
  const limit = new LimitSource({
    next: verify,
    concurrency: options.concurrency,
    ...(options.prefetchPressure !== undefined ? { pressure: options.prefetchPressure } : {}),
  });
  const storeThrough = new StoreThroughSource({ store: options.store, next: limit, log: options.log });
  const dedupe = new DedupeSource({ next: storeThrough });
  const whole: ChunkSource =
    options.deadlineMs === undefined
      ? dedupe
      : new DeadlineSource({ next: dedupe, deadlineMs: options.deadlineMs });
  const store = options.store;
  const source = new PartReadSource({ store, next: whole });
  return {
    source,
    dedupe,
    limit,
    verify,
    origin,
    stats(): SourceTierStats {
      const tiers = store.tiers();
      const m = tiers['memory'];
      const d = tiers['disk'];
      return {
        memory: { chunks: m?.hits ?? 0, bytes: m?.hitBytes ?? 0 },
        disk: { chunks: d?.hits ?? 0, bytes: d?.hitBytes ?? 0 },
        origin: origin.stats(),
      };
    },
  };
}
