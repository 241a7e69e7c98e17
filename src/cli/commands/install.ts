// The `ferry install` command: the systemd units, a default config, and containerd's config snippet.
import type { Command } from 'commander';

export function registerInstall(program: Command): void {
  program
    .command('install')
    .description('install the systemd unit and a default config, and print the containerd config snippet')
    .option('--prefix <dir>', 'install under this root instead of /', '/')
    .action(async (opts: { prefix?: string }) => {
      const { runInstall } = await import('../install-command.js');
      await runInstall(opts);
    });
}
