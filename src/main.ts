// The `ferry` command line (commander): parses arguments and hands each subcommand to its module in cli/.
import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isFerryError } from './errors.js';

/** Read once at start-up: package.json sits next to src/ and dist/ in a checkout and in the npm package. */
export const FERRY_VERSION = (createRequire(import.meta.url)('../package.json') as { version: string })
  .version;

/** What a usage error (unknown command or option, missing argument, bad value) exits with; failures exit 1. */
export const USAGE_EXIT_CODE = 2;

type TraceRunner = (ref: string, opts: Record<string, unknown>) => Promise<void>;

function collectInt(v: string): number {
  const n = Number(v);
  // commander's own error type: it reports it as a usage error naming the option.
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`not a positive integer: ${v}`);
  return n;
}

export function buildProgram(): Command {
  const program = new Command('ferry')
    .description('Lazy-loading container image daemon: mount OCI images through FUSE, fetch bytes on demand')
    .version(FERRY_VERSION)
    .showHelpAfterError()
    // Throw instead of exiting so main() picks the exit code; subcommands inherit this.
    .exitOverride();

  program
    .command('index')
    .description('build (or load) the seekable index of every layer of an image and print a table per layer')
    .argument('<ref>', 'image reference, e.g. 127.0.0.1:5000/app:1')
    .option('--json', 'print JSON with a per-file list')
    .option('--push', 'store the indexes in the registry as an artifact referring to the image')
    .option(
      '--sign-key <file>',
      'with --push: sign the artifact (cosign layout) with this PEM private key; nodes trust it through [index] trustedKeys',
    )
    .option(
      '--bind <tag>',
      'with --push: also push an image index under <tag> listing the image and its indexes; running it needs no key',
    )
    .option('--rebuild', 'ignore cached indexes and build again')
    .option('-c, --config <file>', 'config file (TOML)')
    .addOption(
      new Option(
        '--chunk-size <bytes>',
        'chunk size of the indexes (builds them afresh; default [index] chunkSizeBytes)',
      ).argParser(collectInt),
    )
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
    .option(
      '--allow-suid-dev',
      "honour the image's setuid bits and device nodes (default: every mount is nosuid,nodev)",
    )
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
  // --- prefetch hint (src/cli/prefetch-hint-command.ts): without --files, ask the daemon over its hint API ---
  program
    .command('prefetch')
    .description(
      "warm the node's chunk cache for an image: with --files, fetch those files' chunks here; " +
        'without, send a prefetch hint to the running `ferry daemon` (trace-driven)',
    )
    .argument('<ref>', 'image reference')
    .option(
      '--files <glob...>',
      'files to fetch: a glob without `/` matches base names (e.g. "*.safetensors"), else whole paths',
    )
    .addOption(new Option('--concurrency <n>', 'chunk fetches in flight (--files)').argParser(collectInt))
    .option('--json', 'print JSON (JSON lines with --wait)')
    .option('--wait', 'hint: follow the job until it is done (progress bar on a terminal)')
    .addOption(
      new Option('--priority <n>', 'hint: higher runs sooner among queued jobs').argParser((v) => {
        const n = Number(v);
        if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`not an integer: ${v}`);
        return n;
      }),
    )
    .addOption(new Option('--budget <bytes>', 'hint: bytes to prefetch at most').argParser(collectInt))
    .addOption(
      new Option('--deadline-ms <ms>', 'hint: give up if not done this many ms from now').argParser(
        collectInt,
      ),
    )
    .option('--workload <key>', 'hint: use the trace recorded for this workload key')
    .option('--socket <path>', "hint: the daemon's hint socket (default <runDir>/prefetch.sock)")
    .option('--address <host:port>', "hint: a daemon's TCP hint API instead of the local socket")
    .option('--token-file <file>', 'hint: bearer token for --address')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (ref: string, opts: Record<string, unknown>) => {
      if (opts['files'] === undefined) {
        const { runPrefetchHint } = await import('./cli/prefetch-hint-command.js');
        await runPrefetchHint(ref, opts);
        return;
      }
      const { runPrefetch } = await import('./cli/prefetch-command.js');
      await runPrefetch(ref, opts);
    });
  // --- end prefetch hint ---
  // --- end prefetch --files ---

  program
    .command('daemon')
    .description(
      'run the containerd remote snapshotter (snapshots API on a unix socket) until SIGTERM/SIGINT',
    )
    .option('-c, --config <file>', 'config file (TOML)')
    .option(
      '--no-spawn-holder',
      'never start a FUSE holder; wait for the one a service manager runs (systemd: ferry-fuse.service)',
    )
    .action(async (opts: { config?: string; spawnHolder?: boolean }) => {
      const { runDaemon } = await import('./cli/daemon-command.js');
      await runDaemon(opts);
    });

  // bin/ferry.js runs `ferry fuse-holder` without loading this CLI (the holder must start fast and small);
  // it is declared here for `ferry --help`, and its own --help prints its options.
  program
    .command('fuse-holder')
    .description(
      'keep the FUSE mounts of `ferry daemon` across its restarts (started by the daemon or ferry-fuse.service)',
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async () => {
      await import('./fuse/holder/main.js');
    });

  // --- operations: status, doctor, install (src/cli/{status,doctor,install}-command.ts) ---
  program
    .command('status')
    .description(
      'show what the running daemon serves: images, layers (% fetched, how reads were served), cache, prefetch, peers',
    )
    .option('--json', 'print the status as JSON')
    .option('--socket <path>', 'the daemon status socket (default <runDir>/ferry.sock from the config)')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (opts: { json?: boolean; socket?: string; config?: string }) => {
      const { runStatus } = await import('./cli/status-command.js');
      await runStatus(opts);
    });

  program
    .command('doctor')
    .description(
      'check this node for what Ferry needs (FUSE, overlayfs, kernel, containerd config, sockets, disk)',
    )
    .option('--containerd-config <file>', 'containerd config to check', '/etc/containerd/config.toml')
    .option('--json', 'print the findings as JSON')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (opts: { containerdConfig?: string; json?: boolean; config?: string }) => {
      const { runDoctor } = await import('./cli/doctor-command.js');
      await runDoctor(opts);
    });

  program
    .command('install')
    .description('install the systemd unit and a default config, and print the containerd config snippet')
    .option('--prefix <dir>', 'install under this root instead of /', '/')
    .action(async (opts: { prefix?: string }) => {
      const { runInstall } = await import('./cli/install-command.js');
      await runInstall(opts);
    });
  // --- end operations ---

  const config = program
    .command('config')
    .description('print or check configuration')
    .option('--defaults', 'print the full default configuration as TOML')
    .option('--check <file>', 'validate a config file and print the result')
    .action(async (opts: { defaults?: boolean; check?: string }) => {
      const { runConfig } = await import('./cli/config-command.js');
      await runConfig(opts);
    });
  config
    .command('show')
    .description('print the effective configuration (defaults, then the file) with every secret redacted')
    .option('--json', 'print JSON instead of TOML')
    .option('-c, --config <file>', 'config file (TOML)')
    .action(async (opts: { json?: boolean; config?: string }) => {
      const { runConfigShow } = await import('./cli/config-command.js');
      await runConfigShow(opts);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has already printed its message (and the help) on stderr; --help and --version exit 0.
      process.exitCode = e.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
      return;
    }
    const code = isFerryError(e) ? e.code : 'INTERNAL';
    process.stderr.write(`ferry: ${code}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = isFerryError(e, 'INVALID_ARGUMENT') ? 2 : 1;
  }
}
