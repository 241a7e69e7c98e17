// The work of one prefetch-hint job on a node: resolve the image, get its layer indexes, find its trace (local,
// then registry), plan within the byte budget, and run a Prefetcher over the node's shared chunk source.
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { parseReference, type ImageReference } from '../image/reference.js';
import type { ImageLayers, IndexProvider, ProvidedIndex } from '../index/provider.js';
import type { Logger } from '../log.js';
import type { RegistryClient, ResolvedImage } from '../registry/client.js';
import type { ChunkSource } from '../source/chunk-source.js';
import type { HintRun, HintRunner } from './hint-job.js';
import { findTrace, type PrefetchSettings } from './image-prefetch.js';
import { imageStartSet } from './image-start-set.js';
import { planPrefetch } from './plan.js';
import { Prefetcher, type CachedCheck, type PrefetchStatus } from './prefetcher.js';
import type { TraceStore } from './trace-store.js';

export interface HintRunnerOptions {
  registry: RegistryClient;
  provider: IndexProvider;
  traces: TraceStore;
  /** The node's shared chunk source (the one its mounts read through), so prefetch and demand share a limiter. */
  source: ChunkSource;
  cached?: CachedCheck;
  settings: PrefetchSettings;
  /** Tells the source which repository holds these layers (layers may not be mounted yet). */
  registerBlobs?: (ref: ImageReference, layers: readonly Digest[]) => void;
  log: Logger;
  /** How often FETCHING progress is reported; default 200 ms. */
  progressIntervalMs?: number;
  /** Keeps what the hint resolved for the image's Prepare calls (ReadyImages fits); released if the job fails. */
  ready?: {
    stage(image: ResolvedImage, layers: ImageLayers, provided: readonly ProvidedIndex[]): () => void;
  };
}

function chunkProgress(s: PrefetchStatus) {
  return {
    chunksDone: s.chunksDone,
    chunksTotal: s.chunksTotal,
    bytesDone: s.bytesDone,
    bytesTotal: s.bytesTotal,
    chunksCached: s.stats.alreadyCached,
    chunksFailed: s.stats.errors,
  };
}

export function hintRunner(o: HintRunnerOptions): HintRunner {
  const log = o.log.child({ component: 'prefetch-hints' });
  return async (run) => {
    const { signal, spec } = run;
    run.phase('RESOLVING');
    const image = await o.registry.resolve(parseReference(spec.imageRef), signal);
    run.resolved(image.manifestDigest);

    run.phase('INDEXING');
    const layers = await o.provider.layersOf(image, signal);
    const provided = await o.provider.forImage(image, { signal, layers });
    const indexes: LayerIndex[] = provided.map((p) => p.index);
    // The pull that follows the hint finds its indexes (and then trees) here, not by resolving them again.
    const release = o.ready?.stage(image, layers, provided);
    try {
      await fetchPlanned(run, image, indexes);
    } catch (e) {
      release?.();
      throw e;
    }
  };

  async function fetchPlanned(run: HintRun, image: ResolvedImage, indexes: LayerIndex[]): Promise<void> {
    const { signal, spec } = run;
    o.registerBlobs?.(
      image.ref,
      indexes.map((ix) => ix.layerDigest),
    );
    let found;
    try {
      found = await findTrace({
        image,
        traces: o.traces,
        registry: o.settings.pullFromRegistry ? o.registry : undefined,
        workloadKey: spec.workloadKey,
        log,
        signal,
      });
    } catch (e) {
      signal.throwIfAborted();
      log.warn({ err: e, jobId: run.jobId }, 'cannot load a trace; prefetching the default');
    }
    const prefetcher = new Prefetcher({
      source: o.source,
      ...(o.cached !== undefined ? { cached: o.cached } : {}),
      concurrency: o.settings.concurrency,
      log,
    });
    const onAbort = () => prefetcher.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    // Without a trace, the image's start set (its file heads are fetched while it is resolved).
    const startSet =
      found === undefined
        ? await imageStartSet({
            registry: o.registry,
            image,
            indexes,
            budgetBytes: o.settings.startSetBytes,
            fetch: (req) => {
              const c = req.index.chunks[req.chunk]!;
              return prefetcher.fetchNow({ req, digest: c.digest, size: c.size, phase: 'default' });
            },
            log,
            signal,
          })
        : undefined;
    const plan = planPrefetch({
      indexes,
      trace: found?.trace.entries,
      startSet: startSet?.chunks,
      budgetBytes: spec.budgetBytes ?? o.settings.budgetBytes,
      defaultBytesPerLayer: o.settings.defaultBytesPerLayer,
      background: o.settings.background,
    });
    const totalBytes = plan.items.reduce((s, it) => s + it.size, 0);
    run.planned(found?.origin ?? 'none', { chunks: plan.items.length, bytes: totalBytes });
    signal.throwIfAborted();

    run.phase('FETCHING');
    let reported = -1;
    const report = (): void => {
      const p = chunkProgress(prefetcher.status());
      // Watchers get a message per change, not per tick.
      if (p.chunksDone === reported) return;
      reported = p.chunksDone;
      run.progress(p);
    };
    const timer = setInterval(report, o.progressIntervalMs ?? 200);
    timer.unref();
    try {
      const stats = await prefetcher.run(plan.items);
      report();
      log.info(
        { jobId: run.jobId, trace: found?.origin ?? 'none', pruned: plan.pruned, ...stats },
        'prefetch hint fetched',
      );
    } finally {
      clearInterval(timer);
      signal.removeEventListener('abort', onAbort);
    }
    signal.throwIfAborted();
  }
}
