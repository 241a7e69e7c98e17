// The ~200 MiB gzip layer of benchmarks 1 and 2: makeCorpus's base layer (two big files, one random and one
// text, plus thousands of small mixed files and every special entry kind), gzip level 6, cached on disk.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipLayer, makeCorpus } from '../../test/helpers/corpus.js';
import { cacheDir, cached } from './gen.js';
import { MiB, type BenchArgs } from './report.js';

export interface Layer200 {
  path: string;
  /** Whether it came from the data cache. */
  hit: boolean;
  smallFiles: number;
  bigFileBytes: number;
}

export async function layer200(args: BenchArgs): Promise<Layer200> {
  const smallFiles = args.quick ? 1000 : 3000;
  const bigFileBytes = (args.quick ? 24 : 96) * MiB;
  const { path, hit } = await cached(`corpus-${smallFiles}-${bigFileBytes}.tar.gz`, args.noCache, (tmp) => {
    const scratch = join(cacheDir(), `scratch-corpus-${process.pid}`);
    rmSync(scratch, { recursive: true, force: true });
    try {
      const [base] = makeCorpus(scratch, { smallFiles, bigFileBytes });
      writeFileSync(tmp, gzipLayer(base!.tar, 6));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    return Promise.resolve();
  });
  return { path, hit, smallFiles, bigFileBytes };
}
