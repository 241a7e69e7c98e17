// The `ferry` command line (commander): parses arguments and hands each subcommand to its module in cli/.
import { Command, Option } from 'commander';
import { isFerryError } from './errors.js';

type TraceRunner = (ref: string, opts: Record<string, unknown>) => Promise<void>;

function collectInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`not a positive integer: ${v}`);
  return n;
}

export function buildProgram(): Command {
  const program = new Command('ferry')
    .description('Lazy-loading container image daemon: mount OCI images through FUSE, fetch bytes on demand')
    .version('0.1.0')
    .showHelpAfterError();

  program
    .command('index')
    .description('build (or load) the seekable index of every layer of an image and print a table per layer')
    .argument('<ref>', 'image reference, e.g. 127.0.0.1:5000/app:1')
    .option('--json', 'print JSON with a per-file list')
    .option('--push', 'store the indexes in the registry as an artifact referring to the image')
    .option('--rebuild', 'ignore cached indexes and build again')
    .option('-c, --config <file>', 'config file (TOML)')
    .addOption(new Option('--chunk-size <bytes>', 'chunk size of built indexes').argParser(collectInt))
    .action(async (ref: string, opts: Record<string, unknown>) => {
      const { runIndex } = await import('./cli/index-command.js');
      await runIndex(ref, opts);
    });

  program
    .command('mount')
    .description('mount an image read-only at <dir> and serve its files on demand until interrupted')
    .argument('<ref>', 'image reference')
    .argument('<dir>', 'mount point (created if missing)')
    .option('--json', 'print what was mounted as JSON')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (ref: string, dir: string, opts: Record<string, unknown>) => {
      const { runMount } = await import('./cli/mount-command.js');
      await runMount(ref, dir, opts);
    });

  program
    .command('umount')
    .description('unmount an image mounted by `ferry mount` (the overlay and every layer)')
    .argument('<dir>', 'mount point')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (dir: string, opts: { config?: string }) => {
      const { runUmount } = await import('./cli/mount-command.js');
      await runUmount(dir, opts);
    });

  const trace = program
    .command('trace')
    .description('startup traces: what a start of an image read, replayed as prefetch on the next start');
  const traceSub = (name: string, description: string, load: () => Promise<TraceRunner>): void => {
    trace
      .command(name)
      .description(description)
      .argument('<ref>', 'image reference')
      .option('--json', 'print JSON')
      .option('--workload <key>', 'the workload key that separates traces of different commands on one image')
      .option('-c, --config <file>', 'config file (TOML)')
      .action(async (ref: string, opts: Record<string, unknown>) => (await load())(ref, opts));
  };
  traceSub('show', "print the files, bytes and timeline of an image's trace", async () => {
    return (await import('./cli/trace-command.js')).runTraceShow;
  });
  traceSub(
    'push',
    'store the local trace in the registry as an artifact referring to the image',
    async () => {
      return (await import('./cli/trace-command.js')).runTracePush;
    },
  );
  traceSub('pull', 'fetch the trace published for an image into the local store', async () => {
    return (await import('./cli/trace-command.js')).runTracePull;
  });

  // --- prefetch --files (src/cli/prefetch-command.ts) ---
  program
    .command('prefetch')
    .description("fetch every chunk of an image's files matching --files into the node's chunk cache")
    .argument('<ref>', 'image reference')
    .requiredOption(
      '--files <glob...>',
      'files to fetch: a glob without `/` matches base names (e.g. "*.safetensors"), else whole paths',
    )
    .addOption(new Option('--concurrency <n>', 'chunk fetches in flight').argParser(collectInt))
    .option('--json', 'print the result as JSON')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (ref: string, opts: Record<string, unknown>) => {
      const { runPrefetch } = await import('./cli/prefetch-command.js');
      await runPrefetch(ref, opts);
    });
  // --- end prefetch --files ---

  program
    .command('daemon')
    .description(
      'run the containerd remote snapshotter (snapshots API on a unix socket) until SIGTERM/SIGINT',
    )
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (opts: { config?: string }) => {
      const { runDaemon } = await import('./cli/daemon-command.js');
      await runDaemon(opts);
    });

  program
    .command('config')
    .description('print or check configuration')
    .option('--defaults', 'print the full default configuration as TOML')
    .option('--check <file>', 'validate a config file and print the result')
    .action(async (opts: { defaults?: boolean; check?: string }) => {
      const { runConfig } = await import('./cli/config-command.js');
      await runConfig(opts);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    const code = isFerryError(e) ? e.code : 'INTERNAL';
    process.stderr.write(`ferry: ${code}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = isFerryError(e, 'INVALID_ARGUMENT') ? 2 : 1;
  }
}
