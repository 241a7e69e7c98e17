// The snapshot model shared by the store, the snapshotter and the gRPC layer: kinds, info, mounts, usage.

export type SnapshotKind = 'view' | 'active' | 'committed';

/** What containerd sees of a snapshot (containerd.services.snapshots.v1.Info). */
export interface SnapshotInfo {
  readonly name: string;
  /** Backend name of the parent, '' for none. */
  readonly parent: string;
  readonly kind: SnapshotKind;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  readonly labels: Readonly<Record<string, string>>;
}

/** containerd.types.Mount (target is left empty, as the 1.6 proxy client drops it). */
export interface SnapshotMount {
  readonly type: string;
  readonly source: string;
  readonly options: readonly string[];
}

export interface SnapshotUsage {
  readonly sizeBytes: number;
  readonly inodes: number;
  /**
   * Rejects with an IntegrityError when the layer proves not to be what its digests commit to: its index fails
   * the audit (remote layers whose index is not proof by itself), or its blob comes back wrong from every
   * repository known to hold it (BadBytesError). May stay pending for the life of the mount.
   */
  readonly verified?: Promise<void> | undefined;
  /**
   * Resolves once the layer's index is proven (its audit passed), rejects when it is not; undefined when the
   * index is proof by itself. Only a proven layer is materialised.
   */
  readonly proven?: Promise<void> | undefined;
}

/** Label the unpacker sets to the chain ID it wants; a remote snapshot is committed under that name. */
export const LABEL_TARGET_REF = 'containerd.io/snapshot.ref';
/** Marker on snapshots this snapshotter mounted lazily (same key as stargz, so tools recognise it). */
export const LABEL_REMOTE = 'containerd.io/snapshot/remote';
