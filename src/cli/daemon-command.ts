// `ferry daemon [--config FILE]`: runs the containerd snapshotter until SIGTERM/SIGINT, then stops in order.
// The parts are built by the node context and the daemon's composition root (src/daemon/compose.ts).
import { startDaemon } from '../daemon/compose.js';
import { toggleDebug } from '../log.js';
import { createContext } from '../node/context.js';
import { notifySystemd } from '../os/notify.js';

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
  const onUsr2 = () => ctx.log.warn({ logLevel: toggleDebug(ctx.log) }, 'log level toggled by SIGUSR2');
  process.on('SIGUSR2', onUsr2);
  try {
    const running = await startDaemon(ctx, opts.spawnHolder === false ? { spawnHolder: false } : {});
    // Signals are handled from here on, also while readiness waits (at most a few seconds).
    void running.ready.then(() =>
      notifySystemd('ready', `serving ${running.daemon.paths.socketPath}`, ctx.log),
    );
    const signal = await nextSignal();
    ctx.log.info({ signal }, 'shutting down');
    await notifySystemd('stopping', `stopping (${signal})`, ctx.log);
    // A second signal while draining means "now": the FUSE mounts are detached lazily by the next start.
    void nextSignal().then((s) => {
      ctx.log.warn({ signal: s }, 'second signal: exiting without a clean shutdown');
      ctx.log.flush();
      process.exit(1);
    });
    await running.stop();
  } finally {
    process.off('SIGUSR2', onUsr2);
    await ctx.close();
  }
  // Nothing should keep the loop alive now; if a stray handle does, do not hang the service manager.
  setTimeout(() => process.exit(process.exitCode ?? 0), 5_000).unref();
}
