// The config as every command uses it: the validated fields plus everything derived from them (paths under
// stateDir and runDir, the FUSE timings), computed once here and frozen. Nothing else joins config paths.
import { join } from 'node:path';
import type { Deprecation } from './deprecated-keys.js';
import type { FerryConfig } from './schema.js';

/** How the kernel may cache a lazy layer's answers, and how long a read may take (`[fuse]`). */
export interface FuseTimings {
  /** A FUSE read not answered within this long fails with EIO (the fetch continues for the cache). */
  readonly readDeadlineMs: number;
  readonly attrTimeoutMs: number;
  readonly entryTimeoutMs: number;
  /** Cached "no such name" answers (overlay looks up many names lower layers lack). */
  readonly negativeTimeoutMs: number;
}

/** Every file and socket the node uses, defaults filled in from stateDir and runDir. */
export interface NodePaths {
  readonly stateDir: string;
  readonly runDir: string;
  /** The disk chunk cache (`[cache] dir`, default `<stateDir>/chunks`). */
  readonly cacheDir: string;
  /** Locally built and fetched layer indexes. */
  readonly indexDir: string;
  /** Merged startup traces. */
  readonly tracesDir: string;
  /** Snapshot dirs and metadata (`[snapshotter] root`, default `<stateDir>/snapshots`). */
  readonly snapshotRoot: string;
  /** containerd's proxy plugin address (`[snapshotter] socketPath`, default `<runDir>/snapshotter.sock`). */
  readonly snapshotterSocket: string;
  /** The FUSE holder's socket (`[fuse] holderSocket`, default `<runDir>/fuse-holder.sock`). */
  readonly holderSocket: string;
  /** The status socket (`[daemon] statusSocketPath`, default `<runDir>/ferry.sock`). */
  readonly statusSocket: string;
  /** The prefetch hint API socket (`[prefetch] hintSocketPath`, default `<runDir>/prefetch.sock`). */
  readonly hintSocket: string;
  /** `ferry mount`'s record of live mounts, and its scratch dir for layer mountpoints. */
  readonly mountStateDir: string;
  readonly mountScratchDir: string;
}

export interface Derived {
  readonly paths: NodePaths;
  readonly fuseTimings: FuseTimings;
  /** Deprecated keys the config used (the caller logs one warning each). */
  readonly deprecations: readonly Deprecation[];
}

export type ResolvedConfig = Readonly<FerryConfig> & Derived;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The one place derived paths and defaults are computed. */
export function resolveConfig(
  fields: FerryConfig,
  deprecations: readonly Deprecation[] = [],
): ResolvedConfig {
  const { stateDir, runDir } = fields.daemon;
  const paths: NodePaths = {
    stateDir,
    runDir,
    cacheDir: fields.cache.dir ?? join(stateDir, 'chunks'),
    indexDir: join(stateDir, 'indexes'),
    tracesDir: join(stateDir, 'traces'),
    snapshotRoot: fields.snapshotter.root ?? join(stateDir, 'snapshots'),
    snapshotterSocket: fields.snapshotter.socketPath ?? join(runDir, 'snapshotter.sock'),
    holderSocket: fields.fuse.holderSocket ?? join(runDir, 'fuse-holder.sock'),
    statusSocket: fields.daemon.statusSocketPath ?? join(runDir, 'ferry.sock'),
    hintSocket: fields.prefetch.hintSocketPath ?? join(runDir, 'prefetch.sock'),
    mountStateDir: join(runDir, 'mounts'),
    mountScratchDir: join(runDir, 'mnt'),
  };
  const { readDeadlineMs, attrTimeoutMs, entryTimeoutMs, negativeTimeoutMs } = fields.fuse;
  return deepFreeze({
    ...fields,
    paths,
    fuseTimings: { readDeadlineMs, attrTimeoutMs, entryTimeoutMs, negativeTimeoutMs },
    deprecations: [...deprecations],
  });
}

/** The config's own fields, without what resolveConfig derived (what `config show` prints, what re-validates). */
export function configFields(c: ResolvedConfig): FerryConfig {
  const derived = new Set<string>(['paths', 'fuseTimings', 'deprecations'] satisfies Array<keyof Derived>);
  return Object.fromEntries(Object.entries(c).filter(([k]) => !derived.has(k))) as FerryConfig;
}
