// Benchmark 5: `find` that lstat()s every entry of a 20k-file layer mounted by Ferry against the same layer
// extracted to local disk and the same layer written out by Ferry's materialiser (what new containers use once the
// layer is local): cold (after dropping dentry/inode/page caches) and warm (repeated).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushGzipImage, startBenchRegistry } from './lib/bench-registry.js';
import { fmtRss, mountOnNewNode } from './lib/ferry-node.js';
import { cachedTreeLayer } from './lib/gen.js';
import { smallLayer } from './lib/image-1g.js';
import { materialiseGzipLayer } from './lib/materialised.js';
import { elapsed, emitResults, fmtMs, fmtRatio, parseArgs, percentile, say } from './lib/report.js';
import { dropCaches, findStat, untarFile } from './lib/sys.js';

const TARGET = 0.5;

async function main(): Promise<void> {
  const args = parseArgs();
  const small = smallLayer(args);
  say(`# stat-tree${args.quick ? ' (--quick)' : ''}: a layer of ${small.count} small files`);
  const t = performance.now();
  const layer = await cachedTreeLayer(small.key, args.noCache, small.files, 6);
  say(`layer ready in ${fmtMs(elapsed(t))}${layer.hit ? ' (cached)' : ' (generated)'}`);
  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-tree-'));
  const bench = await startBenchRegistry();
  const notes: string[] = [];
  const warmRounds = args.quick ? 2 : 3;
  try {
    await pushGzipImage(bench, 'bench/tree:1', [layer.path]);
    const native = join(work, 'native');
    await untarFile(layer.path, native);
    const plain = join(work, 'materialised');
    const mat = await materialiseGzipLayer(layer.path, plain);
    say(`materialised ${mat.entries} entries (${mat.files} files) in ${fmtMs(mat.ms)}`);
    const node = await mountOnNewNode(`${bench.proxy.host}/bench/tree:1`);
    say(`mounted in ${fmtMs(node.mountMs)} (index built on the fly)`);
    let ferryCold;
    let nativeCold;
    const ferryWarm: number[] = [];
    const nativeWarm: number[] = [];
    let matCold;
    const matWarm: number[] = [];
    try {
      const dropped = await dropCaches();
      if (dropped !== undefined) notes.push(dropped);
      ferryCold = await findStat(node.target);
      for (let r = 0; r < warmRounds; r++) ferryWarm.push((await findStat(node.target)).ms);
      await dropCaches();
      nativeCold = await findStat(native);
      for (let r = 0; r < warmRounds; r++) nativeWarm.push((await findStat(native)).ms);
      await dropCaches();
      matCold = await findStat(plain);
      for (let r = 0; r < warmRounds; r++) matWarm.push((await findStat(plain)).ms);
    } catch (e) {
      await node.stop();
      throw e;
    }
    const stopped = await node.stop();
    rmSync(node.env.dir, { recursive: true, force: true });
    if (ferryCold.entries !== nativeCold.entries) {
      throw new Error(`find saw ${ferryCold.entries} entries in the mount, ${nativeCold.entries} on disk`);
    }
    if (matCold.entries !== nativeCold.entries)
      throw new Error(`find saw ${matCold.entries} entries materialised, ${nativeCold.entries} on disk`);
    say(
      `${ferryCold.entries} entries; cold: ferry ${fmtMs(ferryCold.ms)}, native ${fmtMs(nativeCold.ms)}; ` +
        `materialised ${fmtMs(matCold.ms)}; warm: ferry ${ferryWarm.map(fmtMs).join(', ')}; native ` +
        `${nativeWarm.map(fmtMs).join(', ')}; materialised ${matWarm.map(fmtMs).join(', ')}`,
    );
    say(`ferry mount RSS peak ${fmtRss(Math.max(stopped.rss.peakKb, stopped.rss.hwmKb))}`);
    const fw = percentile(ferryWarm, 50);
    const nw = percentile(nativeWarm, 50);
    const mw = percentile(matWarm, 50);
    notes.push(
      'ratio = native time / ferry time (1 = as fast as native); find -printf with lstat fields over every entry',
    );
    emitResults(
      'stat-tree',
      [
        {
          metric: `find+stat ${ferryCold.entries} entries, cold`,
          ferry: fmtMs(ferryCold.ms),
          baseline: fmtMs(nativeCold.ms),
          ratio: fmtRatio(nativeCold.ms / ferryCold.ms),
          target: `>= ${TARGET}x native`,
          met: nativeCold.ms / ferryCold.ms >= TARGET,
        },
        {
          metric: `find+stat ${ferryCold.entries} entries, warm (median)`,
          ferry: fmtMs(fw),
          baseline: fmtMs(nw),
          ratio: fmtRatio(nw / fw),
          target: `>= ${TARGET}x native`,
          met: nw / fw >= TARGET,
        },
        {
          metric: `find+stat ${ferryCold.entries} entries, cold, materialised`,
          ferry: fmtMs(matCold.ms),
          baseline: fmtMs(nativeCold.ms),
          ratio: fmtRatio(nativeCold.ms / matCold.ms),
          target: `>= ${TARGET}x native`,
          met: nativeCold.ms / matCold.ms >= TARGET,
        },
        {
          metric: `find+stat ${ferryCold.entries} entries, warm (median), materialised`,
          ferry: fmtMs(mw),
          baseline: fmtMs(nw),
          ratio: fmtRatio(nw / mw),
          target: `>= ${TARGET}x native`,
          met: nw / mw >= TARGET,
        },
      ],
      notes,
    );
  } finally {
    await bench.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
