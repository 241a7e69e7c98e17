// The decoded shapes of containerd.services.snapshots.v1 messages as proto-loader produces them (keepCase,
// defaults, enums as strings, longs as numbers), and conversions to and from the snapshot model.
import type { SnapshotInfo, SnapshotKind, SnapshotMount } from '../snapshot/types.js';

export type Labels = Record<string, string>;

export interface CreateRequestMsg {
  snapshotter: string;
  key: string;
  parent: string;
  labels: Labels;
}
export interface KeyRequestMsg {
  snapshotter: string;
  key: string;
}
export interface CommitRequestMsg {
  snapshotter: string;
  name: string;
  key: string;
  labels: Labels;
}
export interface TimestampMsg {
  seconds: number;
  nanos: number;
}
export type KindMsg = 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED';
export interface InfoMsg {
  name: string;
  parent: string;
  kind: KindMsg;
  created_at: TimestampMsg | null;
  updated_at: TimestampMsg | null;
  labels: Labels;
}
export interface UpdateRequestMsg {
  snapshotter: string;
  info: InfoMsg | null;
  update_mask: { paths: string[] } | null;
}
export interface ListRequestMsg {
  snapshotter: string;
  filters: string[];
}
export interface MountMsg {
  type: string;
  source: string;
  target: string;
  options: string[];
}
export interface MountsResponseMsg {
  mounts: MountMsg[];
}
export interface UsageResponseMsg {
  size: number;
  inodes: number;
}
export type EmptyMsg = Record<string, never>;

const KINDS: Record<SnapshotKind, KindMsg> = { view: 'VIEW', active: 'ACTIVE', committed: 'COMMITTED' };

/** ms since the epoch, with a microsecond fraction, as a protobuf Timestamp (whole microseconds). */
function timestamp(ms: number): TimestampMsg {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.min(999_999, Math.round((ms - seconds * 1000) * 1000)) * 1000 };
}

export function infoMsg(i: SnapshotInfo): InfoMsg {
  return {
    name: i.name,
    parent: i.parent,
    kind: KINDS[i.kind],
    created_at: timestamp(i.createdAtMs),
    updated_at: timestamp(i.updatedAtMs),
    labels: { ...i.labels },
  };
}

export function mountsMsg(mounts: readonly SnapshotMount[]): MountsResponseMsg {
  return {
    mounts: mounts.map((m) => ({ type: m.type, source: m.source, target: '', options: [...m.options] })),
  };
}
