// The node's one chunk service: the composed source stack (cache → dedupe → limit → verify → peers → registry)
// over the node's chunk store and decode pool, and where each layer's blob can be read. Built once per process.
import type { ChunkStore } from '../chunks/chunk-store.js';
import type { DecodePool } from '../codec/worker-pool.js';
import type { BlobReader } from '../image/blob-reader.js';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { ImageReference } from '../image/reference.js';
import { NotFoundError } from '../errors.js';
import type { Logger } from '../log.js';
import { chunkOf, type ChunkSource } from './chunk-source.js';
import { composeSource, type ComposedSource } from './compose.js';
import { CpuPressure } from './cpu-pressure.js';
import { originFetcher } from './origin.js';
import { OriginSource, type OriginSourceOptions, type TierCounter } from './origin-source.js';

/** Where blobs are read (RegistryClient fits). */
export interface BlobRegistry {
  blobReader(ref: ImageReference, digest: Digest, knownSizeBytes?: number): BlobReader;
}

/** What the service needs of a P2P node (src/p2p/p2p-node.ts P2PNode fits). */
export interface ChunkPeers {
  /** A source that asks owners before `origin`. */
  wrapOrigin(origin: ChunkSource): ChunkSource;
  /** Lets peers fetch chunks of `indexes` through `source`; returns the withdrawal. */
  register(indexes: readonly LayerIndex[], source: ChunkSource): () => void;
  stats(): { peer: TierCounter; registry: TierCounter };
}

export interface ChunkServiceOptions {
  store: ChunkStore;
  registry: BlobRegistry;
  /** Decodes and verifies fetched chunks; the service does not close it (its owner does). */
  pool: DecodePool;
  /** Concurrent origin chunk fetches, shared by every user of the service. */
  concurrency: number;
  log: Logger;
  /** Peers to ask before the registry (`[p2p]`), and to serve registered layers to. */
  peers?: ChunkPeers | undefined;
}

/** Chunks served, by tier; `peer` only when peers are configured. */
export interface ChunkServiceStats {
  memory: TierCounter;
  disk: TierCounter;
  /** From the registry, whether asked directly or by the peer-first source. */
  origin: TierCounter;
  peer?: TierCounter;
}

/** Fallback repositories kept per blob: enough for shared base layers, bounded against a flood of images. */
const MAX_REPOSITORIES_PER_BLOB = 8;

function sameRepository(a: ImageReference, b: ImageReference): boolean {
  return a.registry === b.registry && a.repository === b.repository;
}

export class ChunkService {
  readonly source: ChunkSource;
  readonly store: ChunkStore;
  private readonly composed: ComposedSource;
  /**
   * Where each layer's blob can be read, first registered first: blobs are content-addressed, so any repository
   * holding it will do, and one that fails (wrong bytes, gone, down) leaves the others.
   */
  private readonly refs = new Map<Digest, ImageReference[]>();
  /** A registered index's blob comes from its own image's repository, whatever other images share the layer. */
  private readonly indexRefs = new WeakMap<LayerIndex, ImageReference>();
  /** Layer and repository pairs whose failure was logged (once each: a bad repository fails every chunk). */
  private readonly warned = new Set<string>();

  constructor(private readonly o: ChunkServiceOptions) {
    this.store = o.store;
    const origin: OriginSourceOptions = {
      blobFor: (index) => this.blobFor(index),
      otherBlobsFor: (index, error) => this.otherBlobsFor(index, error),
      fetch: originFetcher(o.pool),
      store: o.store,
      // A reader joined a prefetch: its decode job, if still queued, goes ahead of other prefetches.
      promote: (req) => o.pool.promote(chunkOf(req).digest),
    };
    const peerFirst = o.peers?.wrapOrigin(new OriginSource(origin));
    this.composed = composeSource({
      store: o.store,
      origin,
      ...(peerFirst !== undefined ? { originOverride: peerFirst } : {}),
      concurrency: o.concurrency,
      log: o.log,
      prefetchPressure: new CpuPressure({ pool: o.pool }),
    });
    this.source = this.composed.source;
  }

  /**
   * Makes `layers` of `image` fetchable through `source`: an index given rather than a digest is read from this
   * image's repository first; every repository registered for a digest is a fallback for all its readers.
   */
  register(image: ImageReference, layers: ReadonlyArray<Digest | LayerIndex>): void {
    for (const l of layers) {
      const digest = typeof l === 'string' ? l : l.layerDigest;
      if (typeof l !== 'string') this.indexRefs.set(l, image);
      const known = this.refs.get(digest) ?? [];
      if (known.some((r) => sameRepository(r, image)) || known.length >= MAX_REPOSITORIES_PER_BLOB) continue;
      this.refs.set(digest, [...known, image]);
    }
  }

  /** Lets peers fetch `indexes`' chunks through this node until the returned function is called. */
  share(indexes: readonly LayerIndex[]): () => void {
    return this.o.peers?.register(indexes, this.source) ?? (() => undefined);
  }

  stats(): ChunkServiceStats {
    const s = this.composed.stats();
    const p = this.o.peers?.stats();
    if (p === undefined) return s;
    return {
      memory: s.memory,
      disk: s.disk,
      origin: { chunks: s.origin.chunks + p.registry.chunks, bytes: s.origin.bytes + p.registry.bytes },
      peer: p.peer,
    };
  }

  private primaryRef(index: LayerIndex): ImageReference | undefined {
    return this.indexRefs.get(index) ?? this.refs.get(index.layerDigest)?.[0];
  }

  private blobFor(index: LayerIndex): BlobReader {
    const ref = this.primaryRef(index);
    if (ref === undefined) throw new NotFoundError(`no image reference known for layer ${index.layerDigest}`);
    return this.o.registry.blobReader(ref, index.layerDigest, index.compressedSize);
  }

  private otherBlobsFor(index: LayerIndex, error: unknown): BlobReader[] {
    const primary = this.primaryRef(index);
    const others = (this.refs.get(index.layerDigest) ?? []).filter(
      (r) => primary === undefined || !sameRepository(r, primary),
    );
    const key = `${index.layerDigest} ${primary?.toString() ?? ''}`;
    if (others.length > 0 && !this.warned.has(key)) {
      if (this.warned.size >= 1024) this.warned.clear();
      this.warned.add(key);
      this.o.log.warn(
        { layer: index.layerDigest, from: primary?.toString(), err: String(error), others: others.length },
        'layer blob failed in its repository; trying the others that hold it',
      );
    }
    return others.map((r) => this.o.registry.blobReader(r, index.layerDigest, index.compressedSize));
  }
}
