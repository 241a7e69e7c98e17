// A `ferry daemon` on a test node's own paths (a FerryEnv) with a snapshots API client on its socket: the set-up
// the snapshotter's integration tests share. FUSE holders are stopped per process (stopHolders), not here.
import { join } from 'node:path';
import { snapshotsClient, type SnapshotsClient } from '../api/grpc-client.js';
import { startFerryDaemon, type RunningFerryDaemon } from './containerd.js';
import { FERRY_BIN, type FerryEnv } from './ferry-cli.js';

export interface SnapshotsNode {
  readonly env: FerryEnv;
  readonly daemon: RunningFerryDaemon;
  readonly client: SnapshotsClient;
  /** The snapshotter's root (`<stateDir>/snapshots`): lazy layers mount below it. */
  readonly root: string;
  readonly socketPath: string;
  /** Closes the client and stops the daemon; a teardown step, so it never throws. */
  stop(): Promise<void>;
}

/** Starts the daemon on `env` (or on `configPath`, a variant of env's config) and connects to it. */
export async function startSnapshotsNode(
  env: FerryEnv,
  o: { configPath?: string; extraArgs?: readonly string[] } = {},
): Promise<SnapshotsNode> {
  const socketPath = join(env.dir, 'run', 'snapshotter.sock');
  const root = join(env.dir, 'state', 'snapshots');
  const daemon = await startFerryDaemon(
    FERRY_BIN,
    o.configPath ?? env.configPath,
    { socketPath, root },
    undefined,
    o.extraArgs,
  );
  const client = await snapshotsClient(socketPath).catch(async (e: unknown) => {
    await daemon.stop().catch(() => undefined);
    throw e;
  });
  return {
    env,
    daemon,
    client,
    root,
    socketPath,
    async stop() {
      client.close();
      await daemon.stop().catch(() => undefined);
    },
  };
}
