// Where the snapshotter serves and keeps its snapshots (from the resolved config's paths), and the daemon's own
// socket beside containerd's when the holder keeps that one.
import { basename, dirname, join } from 'node:path';

export interface SnapshotterPaths {
  socketPath: string;
  root: string;
}

/** The daemon's own socket (0600) when the holder keeps containerd's: `x.sock` → `x-daemon.sock`. */
export function daemonSocketPath(socketPath: string): string {
  return join(dirname(socketPath), `${basename(socketPath, '.sock')}-daemon.sock`);
}
