// `ferry daemon [--config FILE]`: runs the containerd snapshotter until SIGTERM/SIGINT, then stops in order.
import { Daemon } from '../daemon.js';
import { toggleDebug } from '../log.js';
import { createContext } from './context.js';
import { createDaemonOps } from './daemon-ops.js'; // metrics wiring
import { notifySystemd } from './systemd-notify.js'; // metrics wiring

export interface DaemonCommandOptions {
  config?: string;
  /** false: `--no-spawn-holder` (overrides `[fuse] spawnHolder`). */
  spawnHolder?: boolean;
}

function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export async function runDaemon(opts: DaemonCommandOptions): Promise<void> {
  const ctx = await createContext({ configPath: opts.config, daemon: true });
  // --- metrics wiring: status socket + /metrics, read and gRPC hooks, systemd readiness, SIGUSR2 ---
  const ops = createDaemonOps(ctx);
  const onUsr2 = () => ctx.log.warn({ logLevel: toggleDebug(ctx.log) }, 'log level toggled by SIGUSR2');
  process.on('SIGUSR2', onUsr2);
  // --- end metrics wiring ---
  try {
    await ops.start(); // metrics wiring
    const daemon = await Daemon.start({
      ...ctx,
      chunkService: await ctx.chunkService(), // peers first when [p2p] enabled
      ...(opts.spawnHolder === false ? { spawnHolder: false } : {}),
      readObserver: ops.readObserver, // metrics wiring
      onGrpcCall: ops.onGrpcCall, // metrics wiring
    });
    ops.attach(daemon); // metrics wiring
    await notifySystemd('ready', `serving ${daemon.paths.socketPath}`, ctx.log); // metrics wiring
    const signal = await nextSignal();
    ctx.log.info({ signal }, 'shutting down');
    await notifySystemd('stopping', `stopping (${signal})`, ctx.log); // metrics wiring
    // A second signal while draining means "now": the FUSE mounts are detached lazily by the next start.
    void nextSignal().then((s) => {
      ctx.log.warn({ signal: s }, 'second signal: exiting without a clean shutdown');
      ctx.log.flush();
      process.exit(1);
    });
    await daemon.stop();
  } finally {
    process.off('SIGUSR2', onUsr2); // metrics wiring
    await ops.close(); // metrics wiring
    await ctx.close();
  }
  // Nothing should keep the loop alive now; if a stray handle does, do not hang the service manager.
  setTimeout(() => process.exit(process.exitCode ?? 0), 5_000).unref();
}
