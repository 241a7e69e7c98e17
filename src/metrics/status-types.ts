// The JSON the daemon's status endpoint serves and `ferry status` prints: one shape shared by both sides, plus the
// sample shapes components hand to the metrics registry. Holds no credentials by construction (refs and digests).

export const STATUS_VERSION = 1;

/** Where a chunk's bytes came from. `registry` includes the origin under a peer-first source. */
export type Tier = 'memory' | 'disk' | 'peer' | 'registry';
export const TIERS: readonly Tier[] = ['memory', 'disk', 'peer', 'registry'];

export interface TierSample {
  chunks: number;
  bytes: number;
}

export type TierSamples = Record<Tier, TierSample>;

export interface CacheSample {
  tier: string;
  bytes: number;
  /** Configured bound, when there is one. */
  maxBytes?: number;
  entries: number;
  evictions: number;
  hits: number;
  misses: number;
}

export interface LayerStatus {
  digest: string;
  image: string;
  mountpoint: string;
  format: string;
  codec: string;
  compressedBytes: number;
  uncompressedBytes: number;
  chunks: number;
  /** Chunks present in the local cache now. */
  chunksLocal: number;
  fetchedPercent: number;
  reads: number;
  readBytes: number;
  readErrors: number;
  meanReadMs: number;
  /** How demand reads were served: chunks found local vs fetched from a peer or the registry. */
  servedLocalChunks: number;
  servedFetchedChunks: number;
}

export interface ImageStatus {
  ref: string;
  layers: string[];
}

/** One prefetch job as the daemon reports it (MetricSources.prefetch). */
export interface PrefetchSample {
  image: string;
  phase: string;
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Chunks waiting to be fetched. */
  queueDepth: number;
}

export interface PeerSample {
  peer: string;
  state: string;
}

export interface DaemonStatus {
  version: typeof STATUS_VERSION;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  socketPath: string;
  snapshotRoot: string;
  lazy: boolean;
  images: ImageStatus[];
  layers: LayerStatus[];
  tiers: TierSamples;
  cache: CacheSample[];
  reads: { inFlight: number; hung: number; hungReadSeconds: number; oldestMs: number };
  prefetch: PrefetchSample[];
  /** Absent when p2p is off. */
  peers?: PeerSample[];
  /** The FUSE holder keeping the lazy layers mounted across restarts; absent with `fuse.engine = "fuse-native"`. */
  holder?: { pid: number | undefined; socketPath: string };
  rssBytes: number;
}
