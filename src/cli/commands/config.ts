// The `ferry config` commands: print the defaults, check a file, show the effective configuration.
import type { Command } from 'commander';

export function registerConfig(program: Command): void {
  const config = program
    .command('config')
    .description('print or check configuration')
    .option('--defaults', 'print the full default configuration as TOML')
    .option('--check <file>', 'validate a config file and print the result')
    .action(async (opts: { defaults?: boolean; check?: string }) => {
      const { runConfig } = await import('../config-command.js');
      await runConfig(opts);
    });
  config
    .command('show')
    .description('print the effective configuration (defaults, then the file) with every secret redacted')
    .option('--json', 'print JSON instead of TOML')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (opts: { json?: boolean; config?: string }) => {
      const { runConfigShow } = await import('../config-command.js');
      await runConfigShow(opts);
    });
}
