// Where the daemon's sockets and snapshot root live, derived from the config (status, doctor and tests use them).
import { basename, dirname, join } from 'node:path';
import type { FerryConfig } from '../config/load.js';

export interface SnapshotterPaths {
  socketPath: string;
  root: string;
}

export function snapshotterPaths(config: Readonly<FerryConfig>): SnapshotterPaths {
  return {
    socketPath: config.snapshotter.socketPath ?? join(config.daemon.runDir, 'snapshotter.sock'),
    root: config.snapshotter.root ?? join(config.daemon.stateDir, 'snapshots'),
  };
}

export function holderSocketPath(config: Readonly<FerryConfig>): string {
  return config.fuse.holderSocket ?? join(config.daemon.runDir, 'fuse-holder.sock');
}

/** The daemon's own socket (0600) when the holder keeps containerd's: `x.sock` → `x-daemon.sock`. */
export function daemonSocketPath(socketPath: string): string {
  return join(dirname(socketPath), `${basename(socketPath, '.sock')}-daemon.sock`);
}
