// The `ferry trace` commands: show, push and pull an image's startup trace.
import type { Command } from 'commander';

type TraceRunner = (ref: string, opts: Record<string, unknown>) => Promise<void>;

export function registerTrace(program: Command): void {
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
    return (await import('../trace-command.js')).runTraceShow;
  });
  traceSub(
    'push',
    'store the local trace in the registry as an artifact referring to the image',
    async () => {
      return (await import('../trace-command.js')).runTracePush;
    },
  );
  traceSub('pull', 'fetch the trace published for an image into the local store', async () => {
    return (await import('../trace-command.js')).runTracePull;
  });
}
