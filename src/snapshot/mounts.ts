// The mounts of a snapshot, the same scheme as containerd's overlayfs snapshotter: bind for no
// parent or a view of one parent, overlay otherwise, lowerdir topmost first. Remote layers are FUSE-mounted
// `fs` dirs, so they are ordinary lowerdirs here.
import type { SnapshotKind, SnapshotMount } from './types.js';

export interface MountPlan {
  kind: SnapshotKind;
  /** The snapshot's own dirs. */
  fsDir: string;
  workDir: string;
  /** The parents' `fs` dirs, nearest parent first. */
  parentFsDirs: readonly string[];
  /** Extra overlay options (e.g. index=off, userxattr). */
  overlayOptions: readonly string[];
}

export function snapshotMounts(p: MountPlan): SnapshotMount[] {
  const ro = p.kind === 'view';
  if (p.parentFsDirs.length === 0) {
    return [{ type: 'bind', source: p.fsDir, options: [ro ? 'ro' : 'rw', 'rbind'] }];
  }
  if (ro && p.parentFsDirs.length === 1) {
    // Overlay needs two lowers without an upper; one read-only parent is a bind mount.
    return [{ type: 'bind', source: p.parentFsDirs[0]!, options: ['ro', 'rbind'] }];
  }
  const options = [...p.overlayOptions];
  if (!ro) options.push(`workdir=${p.workDir}`, `upperdir=${p.fsDir}`);
  options.push(`lowerdir=${p.parentFsDirs.join(':')}`);
  return [{ type: 'overlay', source: 'overlay', options }];
}
