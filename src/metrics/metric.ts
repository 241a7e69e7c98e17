// What one metric file gets: the registry, the node's state sources (sampled at scrape, each asked once per scrape),
// the read tracker, options, and subscribe() for the event channels. A metric is a function of this context.
import type { Registry } from 'prom-client';
import type { ReadTracker } from './read-tracker.js';
import type { Topic } from './channels.js';
import type { CacheSample, PeerSample, PrefetchSample, TierSamples } from './status-types.js';

export type Provider<T> = () => T | Promise<T>;

export interface LayerFetchSample {
  digest: string;
  chunks: number;
  chunksLocal: number;
}

/** The node's state, sampled at scrape time; a part the node does not run is left out. */
export interface MetricSources {
  /** Chunks and bytes served per tier (the chunk service's stats, plus p2p's peer tier). */
  readonly tiers?: Provider<TierSamples>;
  readonly cache?: Provider<CacheSample[]>;
  readonly layers?: Provider<LayerFetchSample[]>;
  readonly peers?: Provider<PeerSample[]>;
  readonly prefetch?: Provider<PrefetchSample[]>;
}

/** The sources as metric files see them: memoised per scrape (collect() calls run concurrently); lists of a part
 * the node does not run are empty. */
export interface ScrapedSources {
  readonly tiers: () => Promise<TierSamples | undefined>;
  readonly cache: () => Promise<CacheSample[]>;
  readonly layers: () => Promise<LayerFetchSample[]>;
  readonly peers: () => Promise<PeerSample[]>;
  readonly prefetch: () => Promise<PrefetchSample[]>;
}

export interface MetricContext {
  readonly registry: Registry;
  readonly sources: ScrapedSources;
  readonly reads: ReadTracker;
  /** A read in flight longer than this counts as hung. */
  readonly hungReadMs: number;
  /** Layers given their own per-layer series at most. */
  readonly maxLayerSeries: number;
  /** Listens on an event channel until the metrics close. */
  subscribe<T>(topic: Topic<T>, listener: (message: T) => void): void;
}

/** One metric file's export: registers its metrics (and subscriptions) once. */
export type MetricDefinition = (ctx: MetricContext) => void;

export const sum = <T>(xs: readonly T[], f: (x: T) => number): number => xs.reduce((a, x) => a + f(x), 0);
