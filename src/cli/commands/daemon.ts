// The `ferry daemon` command: the containerd remote snapshotter, until SIGTERM/SIGINT.
import type { Command } from 'commander';

export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description(
      'run the containerd remote snapshotter (snapshots API on a unix socket) until SIGTERM/SIGINT',
    )
    .option('-c, --config <file>', 'config file (TOML)')
    .option(
      '--no-spawn-holder',
      'never start a FUSE holder; wait for the one a service manager runs (systemd: ferry-fuse.service)',
    )
    .action(async (opts: { config?: string; spawnHolder?: boolean }) => {
      const { runDaemon } = await import('../daemon-command.js');
      await runDaemon(opts);
    });
}
