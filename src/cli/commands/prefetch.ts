// The `ferry prefetch` command: fetch files' chunks here (--files) or send a hint to the running daemon.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { collectInt } from './options.js';

export function registerPrefetch(program: Command): void {
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
        const { runPrefetchHint } = await import('../prefetch-hint-command.js');
        await runPrefetchHint(ref, opts);
        return;
      }
      const { runPrefetch } = await import('../prefetch-command.js');
      await runPrefetch(ref, opts);
    });
}
