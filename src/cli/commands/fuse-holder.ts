// The `ferry fuse-holder` command, declared for `ferry --help`: bin/ferry.js runs the holder without this CLI
// (it must start fast and small), and the holder's own --help prints its options.
import type { Command } from 'commander';

export function registerFuseHolder(program: Command): void {
  program
    .command('fuse-holder')
    .description(
      'keep the FUSE mounts of `ferry daemon` across its restarts (started by the daemon or ferry-fuse.service)',
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async () => {
      await import('../../fuse/holder/main.js');
    });
}
