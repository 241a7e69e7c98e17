// The `ferry index` command: build or load each layer's seekable index, print it, publish it (signed, bound).
import { type Command, Option } from 'commander';
import { collectInt } from './options.js';

export function registerIndex(program: Command): void {
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
      const { runIndex } = await import('../index-command.js');
      await runIndex(ref, opts);
    });
}
