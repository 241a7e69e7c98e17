// Benchmark 3: time to first byte and time to read a 5% working set of a ~1 GiB image — `ferry mount` on a cold
// node (index published beforehand with `ferry index --push`) against a real `ctr image pull` into containerd's
// overlayfs snapshotter (which unpacks every layer), and with --stargz against stargz-snapshotter on the image
// converted to eStargz — on loopback and on the 200 Mbit/s + 20 ms link. A mode of cold-start's machinery
// (bench/lib/cold-compare.ts): registry-side byte counts, measured link, hashed reads, TTFB timed by the reader.
import { buildStargz, compareColdStarts, ferryRunner, median, PULL, STARGZ } from './lib/cold-compare.js';
import { image1g, imageLayers, workingSet } from './lib/image-1g.js';
import { emitResults, fmtMB, fmtMs, fmtRatio, parseArgs, say, type ResultRow } from './lib/report.js';

const TARGET = 0.15;

async function main(): Promise<void> {
  const args = parseArgs();
  const spec = image1g(args);
  say(`# mount-vs-pull${args.quick ? ' (--quick)' : ''}: ${spec.name}, ${fmtMB(spec.fileBytes)} of files`);
  const layers = await imageLayers(spec, args.noCache);
  const ops = workingSet(args, spec);
  const wsBytes = ops.reduce((a, o) => a + o.length, 0);
  say(
    `working set: ${ops.length} reads, ${fmtMB(wsBytes)} = ${((100 * wsBytes) / spec.fileBytes).toFixed(1)}% of ` +
      'the file bytes',
  );
  const withStargz = process.argv.includes('--stargz');
  const stargzBin = withStargz ? await buildStargz() : undefined;
  const ferry = ferryRunner('gzip');
  const runners = [PULL, ferry, ...(stargzBin === undefined ? [] : [STARGZ])];
  const c = await compareColdStarts({
    layerPaths: layers.paths,
    ops,
    runners,
    reps: 1,
    loopback: true,
    shaped: true,
    stargzBin,
  });
  const rows: ResultRow[] = [];
  for (const ln of c.links) {
    const f = c.results.get(`${ln}|${ferry.name}`)!;
    const p = c.results.get(`${ln}|${PULL.name}`)!;
    const s = c.results.get(`${ln}|${STARGZ.name}`);
    const pair = (metric: string, pick: (x: (typeof f)[number]) => number, target: boolean) => {
      const a = median(f, pick);
      const b = median(p, pick);
      rows.push({
        metric: `${metric} (${ln})`,
        ferry: fmtMs(a),
        baseline: `ctr pull ${fmtMs(b)}`,
        ratio: fmtRatio(a / b),
        target: target ? `<= ${TARGET}x` : '',
        met: target ? a / b <= TARGET : undefined,
      });
      if (s !== undefined) {
        const c2 = median(s, pick);
        rows.push({
          metric: `${metric} (${ln})`,
          ferry: fmtMs(a),
          baseline: `stargz ${fmtMs(c2)}`,
          ratio: fmtRatio(a / c2),
          target: '',
        });
      }
    };
    pair('time to first byte', (x) => x.ttfbMs, true);
    pair('time to read 5% working set', (x) => x.appMs, true);
    const fb = median(f, (x) => x.bytesUntilApp);
    const pb = median(p, (x) => x.bytesUntilApp);
    rows.push({
      metric: `registry bytes until the working set is read (${ln})`,
      ferry: fmtMB(fb),
      baseline: `ctr pull ${fmtMB(pb)}`,
      ratio: fmtRatio(fb / pb),
      target: '',
    });
    if (s !== undefined) {
      const sb = median(s, (x) => x.bytesUntilApp);
      rows.push({
        metric: `registry bytes until the working set is read (${ln})`,
        ferry: fmtMB(fb),
        baseline: `stargz ${fmtMB(sb)}`,
        ratio: fmtRatio(fb / sb),
        target: '',
      });
    }
  }
  emitResults('mount-vs-pull', rows, c.notes);
}

await main();
