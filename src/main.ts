// The `ferry` entry point: builds the command line (cli/commands/) and turns its outcome into an exit code.
import { createRequire } from 'node:module';
import { buildProgram, commanderExitCode } from './cli/commands/program.js';
import { isFerryError } from './errors.js';

/** Read once at start-up: package.json sits next to src/ and dist/ in a checkout and in the npm package. */
export const FERRY_VERSION = (createRequire(import.meta.url)('../package.json') as { version: string })
  .version;

/** What a usage error (unknown command or option, missing argument, bad value) exits with; failures exit 1. */
export const USAGE_EXIT_CODE = 2;

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram(FERRY_VERSION).parseAsync(argv);
  } catch (e) {
    const exit = commanderExitCode(e);
    if (exit !== undefined) {
      // commander has already printed its message (and the help) on stderr; --help and --version exit 0.
      process.exitCode = exit === 0 ? 0 : USAGE_EXIT_CODE;
      return;
    }
    const code = isFerryError(e) ? e.code : 'INTERNAL';
    process.stderr.write(`ferry: ${code}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = isFerryError(e, 'INVALID_ARGUMENT') ? 2 : 1;
  }
}
