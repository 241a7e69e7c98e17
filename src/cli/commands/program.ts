// The `ferry` command line (commander): each command declares itself in a file of this folder and loads its
// implementation (cli/*-command.ts) only when it runs; the program is the list below, in `ferry --help` order.
import { Command, CommanderError } from 'commander';
import { registerIndex } from './indexes.js';
import { registerMount } from './mount.js';
import { registerUmount } from './umount.js';
import { registerTrace } from './trace.js';
import { registerPrefetch } from './prefetch.js';
import { registerDaemon } from './daemon.js';
import { registerFuseHolder } from './fuse-holder.js';
import { registerStatus } from './status.js';
import { registerDoctor } from './doctor.js';
import { registerInstall } from './install.js';
import { registerConfig } from './config.js';

/** Every subcommand, in help order. A new command is a file here and one line in this list. */
const COMMANDS: ReadonlyArray<(program: Command) => void> = [
  registerIndex,
  registerMount,
  registerUmount,
  registerTrace,
  registerPrefetch,
  registerDaemon,
  registerFuseHolder,
  registerStatus,
  registerDoctor,
  registerInstall,
  registerConfig,
];

export function buildProgram(version: string): Command {
  const program = new Command('ferry')
    .description('Lazy-loading container image daemon: mount OCI images through FUSE, fetch bytes on demand')
    .version(version)
    .showHelpAfterError()
    // Throw instead of exiting so main() picks the exit code; subcommands inherit this.
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

/** commander's exit code when `e` is its own exit (usage error, --help, --version: it has printed already). */
export function commanderExitCode(e: unknown): number | undefined {
  return e instanceof CommanderError ? e.exitCode : undefined;
}
