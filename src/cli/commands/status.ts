// The `ferry status` command: what the running daemon serves.
import type { Command } from 'commander';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'show what the running daemon serves: images, layers (% fetched, how reads were served), cache, prefetch, peers',
    )
    .option('--json', 'print the status as JSON')
    .option('--socket <path>', 'the daemon status socket (default <runDir>/ferry.sock from the config)')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (opts: { json?: boolean; socket?: string; config?: string }) => {
      const { runStatus } = await import('../status-command.js');
      await runStatus(opts);
    });
}
