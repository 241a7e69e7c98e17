// Cold start (issue 15): an interpreter-like image as plain gzip (+ Ferry's published index), eStargz and
// zstd:chunked (made by `ctr-remote image convert`), started on cold nodes by Ferry, by stargz-snapshotter
// (containerd + containerd-stargz-grpc, eStargz) and by a full `ctr image pull`, on loopback and on a
// 200 Mbit/s + 20 ms link. Flags: --quick, --reps N, --loopback-only, --shaped-only, --no-cache,
// --only pull,ferry-gzip,ferry-built,ferry-ctd,ferry-estargz,ferry-zstdchunked,stargz (the full pull always runs).
// ferry-ctd: the no-index image through `ferry daemon` as containerd's snapshotter (`ctr-remote image rpull`).
// ferry-built: the same gzip image with no index anywhere (the node streams and builds); with FERRY_BEFORE_BIN
// set to another build's bin/ferry.js, that build runs it too ("before"), side by side in the same run.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { coldImage, coldLayers } from './lib/cold-image.js';
import {
  buildStargz,
  compareColdStarts,
  ferryBuiltRunner,
  ferryCtdRunner,
  ferryRunner,
  median,
  PULL,
  STARGZ,
  type Runner,
  type Sample,
} from './lib/cold-compare.js';
import {
  elapsed,
  emitResults,
  fmtMB,
  fmtMs,
  fmtRatio,
  percentile,
  say,
  type ResultRow,
} from './lib/report.js';

const run = promisify(execFile);

/** What a `ferry mount` process spends before it does anything: node start + loading its modules (median of 3). */
async function cliStartupMs(): Promise<number> {
  const mod = resolve(import.meta.dirname, '../dist/cli/mount-command.js');
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await run(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(mod)})`]);
    times.push(elapsed(t0));
  }
  return percentile(times, 50);
}

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};

async function main(): Promise<void> {
  const quick = argv.includes('--quick');
  const image = coldImage({ quick, noCache: false });
  say(
    `# cold-start${quick ? ' (--quick)' : ''}: ${image.fileCount} files, ${fmtMB(image.fileBytes)} in ` +
      `${image.layers.length} layers`,
  );
  const layerPaths = await coldLayers(image, argv.includes('--no-cache'));
  const startBytes = image.start.reduce((a, o) => a + o.length, 0);
  const files = new Set(image.start.map((o) => o.path)).size;
  say(
    `the start: ${image.start.length} reads over ${files} files, ${fmtMB(startBytes)}, 4 at a time after the first`,
  );
  const stargzBin = await buildStargz();
  const only = flag('--only')?.split(',');
  const before = process.env['FERRY_BEFORE_BIN'];
  const runners: Runner[] = [
    PULL,
    ferryRunner('gzip'),
    ...(before !== undefined && before !== '' ? [ferryBuiltRunner(before, 'before')] : []),
    ferryBuiltRunner(),
    ...(before !== undefined && before !== '' ? [ferryCtdRunner(before, 'before')] : []),
    ferryCtdRunner(),
    ferryRunner('estargz'),
    ferryRunner('zstdchunked'),
    ...(stargzBin === undefined ? [] : [STARGZ]),
  ].filter(
    (r) =>
      only === undefined ||
      r.kind === 'pull' ||
      only.includes(
        r.kind === 'ferry-ctd'
          ? 'ferry-ctd'
          : r.noIndex === true
            ? 'ferry-built'
            : r.kind === 'ferry'
              ? `ferry-${r.format}`
              : r.kind,
      ),
  );
  const c = await compareColdStarts({
    layerPaths,
    ops: image.start,
    runners,
    reps: Number(flag('--reps') ?? 1),
    loopback: !argv.includes('--shaped-only'),
    shaped: !argv.includes('--loopback-only'),
    stargzBin,
  });

  const rows: ResultRow[] = [];
  for (const ln of c.links) {
    const get = (r: Runner): Sample[] | undefined => c.results.get(`${ln}|${r.name}`);
    const pullApp = median(get(PULL)!, (s) => s.appMs);
    const pullReady = median(get(PULL)!, (s) => s.readyMs);
    const sgz = get(STARGZ);
    const sgzUntil = sgz === undefined ? undefined : median(sgz, (s) => s.bytesUntilApp);
    const sgzApp = sgz === undefined ? undefined : median(sgz, (s) => s.appMs);
    for (const r of runners) {
      const ss = get(r)!;
      const size = c.compressed.get(r.format)!;
      const before = median(ss, (s) => s.bytesBeforeReady);
      const until = median(ss, (s) => s.bytesUntilApp);
      const app = median(ss, (s) => s.appMs);
      const built = r.noIndex === true;
      const lazy = r.kind !== 'pull' && !built;
      const gzipFerry = r.kind === 'ferry' && r.format === 'gzip' && !built;
      const shapedFerry = ln !== 'loopback' && r.kind === 'ferry' && !built;
      if (built) {
        // Issue 15 item 5: with no index anywhere, the node streams and verifies every layer before it serves.
        const ready = median(ss, (s) => s.readyMs);
        rows.push({
          metric: `[${ln}] ${r.name}: time to ready vs full pull (${fmtMB(before)} before ready)`,
          ferry: fmtMs(ready),
          baseline: `pull ${fmtMs(pullReady)}`,
          ratio: fmtRatio(ready / pullReady),
          target: '<= 0.6x',
          met: ready / pullReady <= 0.6,
        });
      }
      rows.push(
        {
          metric: `[${ln}] ${r.name}: bytes before ready (image ${fmtMB(size)})`,
          ferry: fmtMB(before),
          baseline: fmtMB(size),
          ratio: fmtRatio(before / size),
          target: lazy ? '<= 0.01x' : '',
          met: lazy ? before / size <= 0.01 : undefined,
        },
        {
          metric: `[${ln}] ${r.name}: bytes until app ready`,
          ferry: fmtMB(until),
          baseline: sgzUntil === undefined ? '' : `stargz ${fmtMB(sgzUntil)}`,
          ratio: sgzUntil === undefined ? '' : fmtRatio(until / sgzUntil),
          target: gzipFerry && sgzUntil !== undefined ? '<= 1x stargz' : '',
          met: gzipFerry && sgzUntil !== undefined ? until <= sgzUntil : undefined,
        },
        {
          metric:
            `[${ln}] ${r.name}: time to app ready (mount ready ${fmtMs(median(ss, (s) => s.readyMs))}, ` +
            `first byte ${fmtMs(median(ss, (s) => s.ttfbMs))})`,
          ferry: fmtMs(app),
          baseline: sgzApp === undefined ? '' : `stargz ${fmtMs(sgzApp)}`,
          ratio: sgzApp === undefined ? '' : fmtRatio(app / sgzApp),
          target: shapedFerry && sgzApp !== undefined ? '<= 0.8x stargz' : '',
          met: shapedFerry && sgzApp !== undefined ? app / sgzApp <= 0.8 : undefined,
        },
        {
          metric: `[${ln}] ${r.name}: time to app ready vs full pull`,
          ferry: fmtMs(app),
          baseline: `pull ${fmtMs(pullApp)}`,
          ratio: fmtRatio(app / pullApp),
          target: '',
        },
      );
    }
  }
  const startup = await cliStartupMs();
  emitResults('cold-start', rows, [
    ...c.notes,
    `medians of ${flag('--reps') ?? 1} repetition(s) per runner`,
    `part of Ferry's "ready": node start + loading ferry's mount modules ${fmtMs(startup)} (median of 3, measured now)`,
  ]);
}

await main();
