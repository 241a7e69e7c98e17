// The `ferry umount` command: unmount what `ferry mount` mounted (the overlay and every layer).
import type { Command } from 'commander';

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .description('unmount an image mounted by `ferry mount` (the overlay and every layer)')
    .argument('<dir>', 'mount point')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (dir: string, opts: { config?: string }) => {
      const { runUmount } = await import('../mount-command.js');
      await runUmount(dir, opts);
    });
}
