// ImagePrefetch: prefetch and tracing for one mounted image — records this start's reads, finds a trace
// (local store, then the registry), plans and runs the prefetch, and on stop saves the new trace.
import type { LayerIndex } from '../image/layer-index.js';
import type { ChunkReadHook } from '../layer/layer-reader.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import type { ChunkSource } from '../source/chunk-source.js';
import { EMPTY_START_SET, imageStartSet } from './image-start-set.js';
import { planPrefetch, type BackgroundMode } from './plan.js';
import { Prefetcher, type CachedCheck, type PrefetchStats, type PrefetchStatus } from './prefetcher.js';
import { TraceRecorder } from './recorder.js';
import type { StartFile, StartSet } from './start-set.js';
import { pullTrace } from './trace-registry.js';
import type { TraceStore } from './trace-store.js';
import type { MergedTrace, Trace } from './trace.js';

/** The `[prefetch]` config section (config.prefetch fits). */
export interface PrefetchSettings {
  readonly enabled: boolean;
  readonly windowMs: number;
  readonly quietMs: number;
  readonly concurrency: number;
  readonly budgetBytes: number;
  readonly background: BackgroundMode;
  readonly startSetBytes: number;
  readonly defaultBytesPerLayer: number;
  readonly maxTraceChunks: number;
  readonly pullFromRegistry: boolean;
}

export type TraceOrigin = 'local' | 'registry' | 'none';

export interface ImagePrefetchOptions {
  image: ResolvedImage;
  /** Bottom layer first. */
  indexes: readonly LayerIndex[];
  source: ChunkSource;
  cached?: CachedCheck;
  traces: TraceStore;
  /** Where to look for a shared trace when there is no local one. */
  registry?: RegistryClient;
  settings: PrefetchSettings;
  workloadKey?: string;
  log: Logger;
  /**
   * The trace lookup, already started by a caller that knew the image before its layers (the snapshotter's
   * layers mount one Prepare at a time): used instead of looking again. Its failure means "no trace".
   */
  trace?: Promise<FoundTrace | undefined>;
  /**
   * The layers mount one by one (the snapshotter's Prepares): `indexes` are those known now, addLayer() brings
   * each later one and layersKnown() ends the wait. With a trace, each layer's traced chunks are planned as soon
   * as it is there; without one, the start set is planned once every layer is known.
   */
  openLayers?: boolean;
}

export interface FoundTrace {
  trace: MergedTrace;
  origin: 'local' | 'registry';
}

export interface ImagePrefetchStatus extends PrefetchStatus {
  traceOrigin: TraceOrigin | 'loading';
  traceStartups: number;
  pruned: number;
  recorder: { state: string; chunks: number };
}

export interface ImagePrefetchResult {
  traceOrigin: TraceOrigin;
  pruned: number;
  stats: PrefetchStats;
  phase: PrefetchStatus['phase'];
  /** Without a trace: the files the start set named and the bytes it planned. */
  startSet: { files: readonly StartFile[]; bytes: number };
}

/** Finds the trace to replay: the local store first, then (optionally) the registry, saved locally if found. */
export async function findTrace(o: {
  image: ResolvedImage;
  traces: TraceStore;
  registry?: RegistryClient | undefined;
  workloadKey?: string | undefined;
  log: Logger;
  signal?: AbortSignal;
}): Promise<FoundTrace | undefined> {
  const local = await o.traces.get(o.image.manifestDigest, o.workloadKey, o.signal);
  if (local !== undefined) return { trace: local, origin: 'local' };
  if (o.registry === undefined) return undefined;
  const remote = await pullTrace(o.registry, o.image, o.log, o.workloadKey, o.signal);
  if (remote === undefined) return undefined;
  await o.traces
    .put(remote, o.signal)
    .catch((e: unknown) => o.log.warn({ err: e }, 'cannot store pulled trace'));
  return { trace: remote, origin: 'registry' };
}

export class ImagePrefetch {
  private readonly o: ImagePrefetchOptions;
  private readonly log: Logger;
  private readonly recorder: TraceRecorder;
  private readonly prefetcher: Prefetcher;
  private saving: Promise<unknown> = Promise.resolve();
  private origin: TraceOrigin | 'loading' = 'loading';
  private startups = 0;
  private pruned = 0;
  private started: Promise<ImagePrefetchResult> | undefined;
  /** Bottom layer first once layersKnown(); until then in arrival order. */
  private indexes: LayerIndex[];
  private readonly allKnown: Promise<void>;
  private markKnown: () => void = () => {};
  /** Set once the trace is in and the open plan has started: addLayer() plans each new layer at once. */
  private planLayer: ((index: LayerIndex) => void) | undefined;
  /** Pass as mountImage's `onChunkRead`: records the read and counts prefetch hits. */
  readonly onChunkRead: ChunkReadHook;

  constructor(options: ImagePrefetchOptions) {
    this.o = options;
    this.log = options.log.child({ component: 'prefetch', image: options.image.manifestDigest });
    this.indexes = [...options.indexes];
    this.allKnown =
      options.openLayers === true ? new Promise((resolve) => (this.markKnown = resolve)) : Promise.resolve();
    const s = options.settings;
    this.recorder = new TraceRecorder({
      manifestDigest: options.image.manifestDigest,
      workloadKey: options.workloadKey,
      windowMs: s.windowMs,
      quietMs: s.quietMs,
      maxEntries: s.maxTraceChunks,
      onComplete: (trace) => this.save(trace),
    });
    this.prefetcher = new Prefetcher({
      source: options.source,
      ...(options.cached !== undefined ? { cached: options.cached } : {}),
      concurrency: s.concurrency,
      log: options.log,
    });
    const record = this.recorder.hook;
    this.onChunkRead = (index, chunk, tMs) => {
      record(index, chunk, tMs);
      this.prefetcher.noteDemand(index, chunk);
    };
  }

  /** Starts recording and prefetching; resolves when the prefetch is done or stopped. Never rejects. */
  start(): Promise<ImagePrefetchResult> {
    this.started ??= this.run().catch((e: unknown) => {
      this.log.warn({ err: e }, 'prefetch failed');
      this.prefetcher.cancel();
      const startSet = { files: [], bytes: 0 };
      return {
        traceOrigin: 'none',
        pruned: 0,
        stats: this.prefetcher.stats(),
        phase: 'failed',
        startSet,
      } as const;
    });
    return this.started;
  }

  private async run(): Promise<ImagePrefetchResult> {
    this.recorder.start();
    const s = this.o.settings;
    let trace: MergedTrace | undefined;
    let origin: TraceOrigin = 'none';
    try {
      if (s.enabled) {
        const found = await (this.o.trace ??
          findTrace({
            image: this.o.image,
            traces: this.o.traces,
            registry: s.pullFromRegistry ? this.o.registry : undefined,
            workloadKey: this.o.workloadKey,
            log: this.log,
            signal: this.prefetcher.signal,
          }));
        trace = found?.trace;
        origin = found?.origin ?? 'none';
        this.startups = trace?.startups ?? 0;
      }
    } catch (e) {
      if (!this.prefetcher.signal.aborted)
        this.log.warn({ err: e }, 'cannot load a trace; using the default');
    }
    this.origin = origin;
    if (trace !== undefined && this.o.openLayers === true) return this.runOpen(trace, origin);
    await this.allKnown;
    const startSet = await this.startSet(trace === undefined && s.enabled);
    const plan = planPrefetch({
      indexes: this.indexes,
      trace: trace?.entries,
      startSet: startSet.chunks,
      budgetBytes: s.budgetBytes,
      defaultBytesPerLayer: s.defaultBytesPerLayer,
      background: s.background,
    });
    this.pruned = plan.pruned;
    const items = s.enabled && !this.prefetcher.signal.aborted ? plan.items : [];
    this.log.info(
      {
        trace: origin,
        chunks: items.length,
        pruned: plan.pruned,
        overBudget: plan.overBudget,
        startSetFiles: startSet.files.length,
      },
      'prefetch planned',
    );
    const stats = await this.prefetcher.run(items);
    const phase = this.prefetcher.status().phase;
    this.log.info({ ...stats, phase }, 'prefetch finished');
    const named = { files: startSet.files, bytes: startSet.bytes };
    return { traceOrigin: origin, pruned: plan.pruned, stats, phase, startSet: named };
  }

  /**
   * With a trace while layers still mount: the traced chunks of the layers there now, then each later layer's
   * the moment it arrives, within one byte budget (the trace's order within each step).
   */
  private async runOpen(trace: MergedTrace, origin: TraceOrigin): Promise<ImagePrefetchResult> {
    const s = this.o.settings;
    let budget = s.budgetBytes;
    const planFor = (indexes: readonly LayerIndex[]) => {
      const layers = new Set(indexes.map((ix) => ix.layerDigest));
      const plan = planPrefetch({
        indexes,
        trace: trace.entries.filter((e) => layers.has(e.layerDigest)),
        budgetBytes: budget,
        defaultBytesPerLayer: 0,
        background: s.background,
      });
      for (const it of plan.items) if (it.phase !== 'background') budget -= it.size;
      this.pruned += plan.pruned;
      return plan;
    };
    const first = planFor(this.indexes);
    const items = s.enabled && !this.prefetcher.signal.aborted ? first.items : [];
    const running = this.prefetcher.run(items, { open: true });
    this.planLayer = (index) => {
      if (this.prefetcher.signal.aborted) return;
      const plan = planFor([index]);
      this.prefetcher.append(plan.items);
      this.log.info({ layer: index.layerDigest, chunks: plan.items.length }, 'prefetch planned for a layer');
    };
    this.log.info(
      {
        trace: origin,
        chunks: items.length,
        layers: this.indexes.length,
        pruned: first.pruned,
        overBudget: first.overBudget,
        startSetFiles: 0,
      },
      'prefetch planned',
    );
    await Promise.race([this.allKnown, running]);
    this.planLayer = undefined;
    this.prefetcher.close();
    const stats = await running;
    const phase = this.prefetcher.status().phase;
    this.log.info({ ...stats, phase }, 'prefetch finished');
    return { traceOrigin: origin, pruned: this.pruned, stats, phase, startSet: { files: [], bytes: 0 } };
  }

  /** An open run's next layer (openLayers): planned at once when the trace is in, else kept for the plan. */
  addLayer(index: LayerIndex): void {
    if (this.indexes.includes(index)) return;
    this.indexes.push(index);
    this.planLayer?.(index);
  }

  /** Every layer there will be (bottom first): the open plan is complete, or the start set can be planned. */
  layersKnown(indexes: readonly LayerIndex[]): void {
    for (const ix of indexes) this.addLayer(ix);
    this.indexes = [...indexes];
    this.markKnown();
  }

  /** Without a trace: the start set, its file heads fetched (and counted) as it is resolved. */
  private startSet(wanted: boolean): Promise<StartSet> {
    const registry = this.o.registry;
    if (!wanted || registry === undefined || this.prefetcher.signal.aborted)
      return Promise.resolve(EMPTY_START_SET);
    return imageStartSet({
      registry,
      image: this.o.image,
      indexes: this.indexes,
      budgetBytes: this.o.settings.startSetBytes,
      fetch: (req) => {
        const c = req.index.chunks[req.chunk]!;
        return this.prefetcher.fetchNow({ req, digest: c.digest, size: c.size, phase: 'default' });
      },
      log: this.log,
      signal: this.prefetcher.signal,
    });
  }

  /** Cancels the prefetch, closes the recording and waits for the trace to be saved. */
  async stop(): Promise<void> {
    this.prefetcher.cancel();
    this.markKnown(); // a plan still waiting for layers ends with the prefetcher's cancel
    this.recorder.finish();
    await this.saving;
  }

  status(): ImagePrefetchStatus {
    return {
      ...this.prefetcher.status(),
      traceOrigin: this.origin,
      traceStartups: this.startups,
      pruned: this.pruned,
      recorder: { state: this.recorder.state, chunks: this.recorder.entries },
    };
  }

  stats(): PrefetchStats {
    return this.prefetcher.stats();
  }

  private save(trace: Trace): void {
    this.saving = this.o.traces
      .record(trace)
      .then((m) => this.log.info({ chunks: trace.entries.length, startups: m.startups }, 'trace saved'))
      .catch((e: unknown) => this.log.warn({ err: e }, 'cannot save trace'));
  }
}
