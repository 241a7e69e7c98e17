// Benchmark 1: index build throughput (MB/s of uncompressed tar) of a ~200 MiB gzip layer with
// buildIndexFromStream over an in-memory BlobReader, against `gzip -dc` of the same layer, in the same run.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { sha256 } from '../src/image/digest.js';
import { MediaType } from '../src/image/manifest.js';
import { buildIndexFromStream } from '../src/index/build-stream.js';
import { MemoryBlobReader } from '../test/helpers/memory-blob.js';
import { layer200 } from './lib/layer200.js';
import {
  elapsed,
  emitResults,
  fmtMB,
  fmtMs,
  fmtRate,
  fmtRatio,
  parseArgs,
  percentile,
  say,
} from './lib/report.js';

async function gzipDc(path: string): Promise<number> {
  const devNull = openSync('/dev/null', 'w');
  try {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const child = spawn('gzip', ['-dc', path], { stdio: ['ignore', devNull, 'inherit'] });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`gzip -dc exited ${code}`))));
    });
    return elapsed(t0);
  } finally {
    closeSync(devNull);
  }
}

async function main(): Promise<void> {
  const args = parseArgs();
  say(`# index-throughput${args.quick ? ' (--quick)' : ''}`);
  let t = performance.now();
  const layer = await layer200(args);
  const gz = readFileSync(layer.path);
  say(`layer: ${fmtMB(gz.length)} gzip (${layer.hit ? 'cached' : `generated in ${fmtMs(elapsed(t))}`})`);
  const layerDigest = sha256(gz);

  const rounds = args.quick ? 1 : 3;
  const ferryMs: number[] = [];
  const gzipMs: number[] = [];
  let uncompressed = 0;
  let facts = '';
  for (let r = 0; r < rounds; r++) {
    t = performance.now();
    const index = await buildIndexFromStream({
      layerDigest,
      mediaType: MediaType.ociLayerGzip,
      blob: new MemoryBlobReader(gz),
    });
    ferryMs.push(elapsed(t));
    uncompressed = index.uncompressedSize;
    const windowBytes = index.windows.reduce((a, w) => a + w.length, 0);
    facts =
      `${index.entries.length} entries, ${index.chunks.length} chunks, ${index.checkpoints.length} ` +
      `checkpoints (${fmtMB(windowBytes)} of windows)`;
    gzipMs.push(await gzipDc(layer.path));
    say(
      `round ${r + 1}: buildIndexFromStream ${fmtMs(ferryMs[r]!)} (${fmtRate(uncompressed, ferryMs[r]!)}), ` +
        `gzip -dc ${fmtMs(gzipMs[r]!)} (${fmtRate(uncompressed, gzipMs[r]!)})`,
    );
  }
  say(`index: ${fmtMB(uncompressed)} uncompressed; ${facts}`);

  // Where the builder's time goes: one native inflate pass, and one SHA-256 pass over the tar (the builder
  // hashes every file byte twice — file digest and chunk digest — plus the compressed blob once).
  t = performance.now();
  const tar = gunzipSync(gz);
  const inflateMs = elapsed(t);
  t = performance.now();
  sha256(tar);
  const hashTarMs = elapsed(t);
  t = performance.now();
  sha256(gz);
  const hashGzMs = elapsed(t);
  say(
    `components (in-process, one pass each): zlib gunzip ${fmtMs(inflateMs)}, sha256(tar) ${fmtMs(hashTarMs)}, ` +
      `sha256(blob) ${fmtMs(hashGzMs)}; inflate + 2×sha256(tar) + sha256(blob) = ` +
      `${fmtMs(inflateMs + 2 * hashTarMs + hashGzMs)} lower bound`,
  );

  const fMed = percentile(ferryMs, 50);
  const gMed = percentile(gzipMs, 50);
  emitResults(
    'index-throughput',
    [
      {
        metric: 'index build MB/s (uncompressed, median)',
        ferry: fmtRate(uncompressed, fMed),
        baseline: `${fmtRate(uncompressed, gMed)} (gzip -dc)`,
        ratio: fmtRatio(gMed / fMed),
        target: '',
      },
      {
        metric: 'index build MB/s (best of rounds)',
        ferry: fmtRate(uncompressed, Math.min(...ferryMs)),
        baseline: fmtRate(uncompressed, Math.min(...gzipMs)),
        ratio: fmtRatio(Math.min(...gzipMs) / Math.min(...ferryMs)),
        target: '',
      },
    ],
    [
      `ratio = ferry MB/s / gzip -dc MB/s; layer ${fmtMB(gz.length)} gzip -6, ${fmtMB(uncompressed)} tar`,
      `builder lower bound from its components: ${fmtRate(uncompressed, inflateMs + 2 * hashTarMs + hashGzMs)}`,
    ],
  );
}

await main();
