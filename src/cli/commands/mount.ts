// The `ferry mount` command: mount an image read-only through FUSE and serve it on demand until interrupted.
import type { Command } from 'commander';

export function registerMount(program: Command): void {
  program
    .command('mount')
    .description('mount an image read-only at <dir> and serve its files on demand until interrupted')
    .argument('<ref>', 'image reference')
    .argument('<dir>', 'mount point (created if missing)')
    .option('--json', 'print what was mounted as JSON')
    .option('-c, --config <file>', 'config file (TOML)')
    .option(
      '--allow-suid-dev',
      "honour the image's setuid bits and device nodes (default: every mount is nosuid,nodev)",
    )
    .action(async (ref: string, dir: string, opts: Record<string, unknown>) => {
      const { runMount } = await import('../mount-command.js');
      await runMount(ref, dir, opts);
    });
}
