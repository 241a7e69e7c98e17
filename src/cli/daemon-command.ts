// `ferry daemon [--config FILE]`: runs the containerd snapshotter until SIGTERM/SIGINT, then stops in order.
import { Daemon } from '../daemon.js';
import { createContext } from './context.js';

export interface DaemonCommandOptions {
  config?: string;
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
  const ctx = await createContext({ configPath: opts.config });
  try {
    const daemon = await Daemon.start(ctx);
    const signal = await nextSignal();
    ctx.log.info({ signal }, 'shutting down');
    // A second signal while draining means "now": the FUSE mounts are detached lazily by the next start.
    void nextSignal().then((s) => {
      ctx.log.warn({ signal: s }, 'second signal: exiting without a clean shutdown');
      ctx.log.flush();
      process.exit(1);
    });
    await daemon.stop();
  } finally {
    await ctx.close();
  }
  // Nothing should keep the loop alive now; if a stray handle does, do not hang the service manager.
  setTimeout(() => process.exit(process.exitCode ?? 0), 5_000).unref();
}
