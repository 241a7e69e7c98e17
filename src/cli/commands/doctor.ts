// The `ferry doctor` command: check this node for what Ferry needs.
import type { Command } from 'commander';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description(
      'check this node for what Ferry needs (FUSE, overlayfs, kernel, containerd config, sockets, disk)',
    )
    .option('--containerd-config <file>', 'containerd config to check', '/etc/containerd/config.toml')
    .option('--json', 'print the findings as JSON')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (opts: { containerdConfig?: string; json?: boolean; config?: string }) => {
      const { runDoctor } = await import('../doctor-command.js');
      await runDoctor(opts);
    });
}
