// Prints the per-stage breakdown of .cpuprofile files (a directory's, or the files named):
//   npx tsx bench/lib/profile-summary.ts <dir-or-file>...
// Stages and their rules are in bench/lib/cpuprofile.ts; bench/profile-read.ts prints the same for its runs.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { formatSummary, summarise } from './cpuprofile.js';

const files = process.argv.slice(2).flatMap((p) =>
  statSync(p).isDirectory()
    ? readdirSync(p)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(p, f))
    : [p],
);
if (files.length === 0) {
  process.stderr.write('usage: profile-summary <dir-or-.cpuprofile>...\n');
  process.exit(2);
}
for (const f of files) process.stdout.write(`${formatSummary(summarise(f), f).join('\n')}\n`);
