// Benchmark 4: sequential read (`dd bs=1M`) of a fully cached 1 GiB file through a Ferry mount against the same
// file on local disk and the layer written out by Ferry's materialiser (what new containers use once it is local):
// first read after dropping the page cache, and re-read. Also the mount's RSS.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushGzipImage, startBenchRegistry } from './lib/bench-registry.js';
import { fmtRss, mountOnNewNode, servedFrom } from './lib/ferry-node.js';
import { cachedTreeLayer } from './lib/gen.js';
import { materialiseGzipLayer } from './lib/materialised.js';
import {
  elapsed,
  emitResults,
  fmtGBps,
  fmtMB,
  fmtMs,
  fmtRatio,
  GiB,
  MiB,
  parseArgs,
  say,
} from './lib/report.js';
import { ddRead, dropCaches, untarFile } from './lib/sys.js';

const FILE = 'data/big.bin';

async function sha256File(path: string): Promise<number> {
  const t0 = performance.now();
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(MiB);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, MiB);
      if (bytesRead === 0) break;
      createHash('sha256').update(buf.subarray(0, bytesRead)).digest();
    }
  } finally {
    await fh.close();
  }
  return elapsed(t0);
}

async function main(): Promise<void> {
  const args = parseArgs();
  const size = args.quick ? 256 * MiB : GiB;
  say(`# seq-read${args.quick ? ' (--quick)' : ''}: ${fmtMB(size)} file`);
  let t = performance.now();
  // gzip -1: the compression level only matters for the warm-up pass; cached reads never touch the blob.
  const layer = await cachedTreeLayer(
    `seq-${size}`,
    args.noCache,
    () => [{ path: FILE, size, content: 'mixed', seed: 4242 }],
    1,
  );
  say(`layer ready in ${fmtMs(elapsed(t))}${layer.hit ? ' (cached)' : ' (generated)'}`);
  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-seq-'));
  const bench = await startBenchRegistry();
  const notes: string[] = [];
  const gbps = (r: { bytes: number; ms: number }) => r.bytes / 1e9 / (r.ms / 1000);
  try {
    const pushed = await pushGzipImage(bench, 'bench/seq:1', [layer.path]);
    say(`pushed ${fmtMB(pushed.compressedBytes)}`);
    // No published index: the mount builds it by streaming the layer, and keeps every chunk it sees.
    const node = await mountOnNewNode(`${bench.proxy.host}/bench/seq:1`);
    const path = join(node.target, FILE);
    const native = join(work, 'native');
    let rounds: Array<
      Record<
        'ferryFirst' | 'ferryRe' | 'nativeFirst' | 'nativeRe' | 'matFirst' | 'matRe',
        { bytes: number; ms: number }
      >
    >;
    let warm: { bytes: number; ms: number };
    let warmFetched: number;
    let hashMs = 0;
    try {
      say(
        `mounted in ${fmtMs(node.mountMs)} (index built on the fly, ${fmtMB(bench.proxy.stats.blobBytes)} fetched)`,
      );
      const before = bench.proxy.stats.blobBytes;
      warm = await ddRead(path);
      warmFetched = bench.proxy.stats.blobBytes - before;
      say(
        `warm-up read through the mount: ${fmtGBps(warm.bytes, warm.ms)}, fetched ${fmtMB(warmFetched)} from the ` +
          'registry (0 means the build left every chunk cached)',
      );
      t = performance.now();
      await untarFile(layer.path, native);
      say(`native copy extracted in ${fmtMs(elapsed(t))}`);
      const plain = join(work, 'materialised');
      const mat = await materialiseGzipLayer(layer.path, plain);
      say(
        `materialised by Ferry in ${fmtMs(mat.ms)} (${fmtGBps(mat.bytes, mat.ms)}, every chunk decoded and verified)`,
      );
      // What verifying every chunk read from the disk tier costs (DiskChunkStore.get hashes each 1 MiB chunk).
      hashMs = await sha256File(join(native, FILE));
      say(`SHA-256 of the file in 1 MiB pieces, in-process: ${fmtGBps(size, hashMs)}`);
      rounds = [];
      for (let r = 0; r < (args.quick ? 1 : 2); r++) {
        const dropped = await dropCaches();
        if (dropped !== undefined && r === 0) notes.push(dropped);
        const ferryFirst = await ddRead(path);
        const ferryRe = await ddRead(path);
        await dropCaches();
        const nativeFirst = await ddRead(join(native, FILE));
        const nativeRe = await ddRead(join(native, FILE));
        await dropCaches();
        const matFirst = await ddRead(join(work, 'materialised', FILE));
        const matRe = await ddRead(join(work, 'materialised', FILE));
        rounds.push({ ferryFirst, ferryRe, nativeFirst, nativeRe, matFirst, matRe });
        say(
          `round ${r + 1}: ferry first ${fmtGBps(ferryFirst.bytes, ferryFirst.ms)}, re-read ` +
            `${fmtGBps(ferryRe.bytes, ferryRe.ms)}; native first ${fmtGBps(nativeFirst.bytes, nativeFirst.ms)}, ` +
            `re-read ${fmtGBps(nativeRe.bytes, nativeRe.ms)}; materialised first ` +
            `${fmtGBps(matFirst.bytes, matFirst.ms)}, re-read ${fmtGBps(matRe.bytes, matRe.ms)}`,
        );
      }
    } catch (e) {
      await node.stop();
      throw e;
    }
    const stopped = await node.stop();
    rmSync(node.env.dir, { recursive: true, force: true });
    const served = servedFrom(stopped.unmounted);
    say(
      `mount served ${served.memory.chunks} chunks from memory, ${served.disk.chunks} from disk, ` +
        `${served.origin.chunks} from the registry; RSS peak ${fmtRss(stopped.rss.peakKb)} (VmHWM ${fmtRss(stopped.rss.hwmKb)})`,
    );
    const best = (k: 'ferryFirst' | 'ferryRe' | 'nativeFirst' | 'nativeRe' | 'matFirst' | 'matRe') =>
      Math.max(...rounds.map((r) => gbps(r[k])));
    const ff = best('ferryFirst');
    const fr = best('ferryRe');
    const nf = best('nativeFirst');
    const nr = best('nativeRe');
    const mf = best('matFirst');
    const mr = best('matRe');
    const rssKb = Math.max(stopped.rss.peakKb, stopped.rss.hwmKb);
    notes.push(
      `SHA-256 of ${fmtMB(size)} takes ${fmtMs(hashMs)} here: ` +
        `${((100 * hashMs) / (size / 1e6 / ff)).toFixed(0)}% of the ferry first read's time if every chunk is verified`,
    );
    notes.push(
      `best of ${rounds.length} round(s); warm-up (first read after the on-the-fly build): ` +
        `${fmtGBps(warm.bytes, warm.ms)}, ${fmtMB(warmFetched)} fetched`,
    );
    emitResults(
      'seq-read',
      [
        {
          metric: `seq read of cached ${fmtMB(size)} file, first read`,
          ferry: `${ff.toFixed(2)} GB/s`,
          baseline: `${nf.toFixed(2)} GB/s`,
          ratio: fmtRatio(ff / nf),
          target: '>= 0.35 GB/s',
          met: ff >= 0.35,
        },
        {
          metric: `seq read of cached ${fmtMB(size)} file, re-read`,
          ferry: `${fr.toFixed(2)} GB/s`,
          baseline: `${nr.toFixed(2)} GB/s`,
          ratio: fmtRatio(fr / nr),
          target: '>= 0.9x native',
          met: fr / nr >= 0.9,
        },
        {
          metric: `seq read of cached ${fmtMB(size)} file, first read, materialised`,
          ferry: `${mf.toFixed(2)} GB/s`,
          baseline: `${nf.toFixed(2)} GB/s`,
          ratio: fmtRatio(mf / nf),
          target: '>= 0.9x native',
          met: mf / nf >= 0.9,
        },
        {
          metric: `seq read of cached ${fmtMB(size)} file, re-read, materialised`,
          ferry: `${mr.toFixed(2)} GB/s`,
          baseline: `${nr.toFixed(2)} GB/s`,
          ratio: fmtRatio(mr / nr),
          target: '>= 0.9x native',
          met: mr / nr >= 0.9,
        },
        {
          metric: 'ferry mount RSS peak (seq-read)',
          ferry: fmtRss(rssKb),
          baseline: '',
          ratio: '',
          target: '<= 150 MB',
          met: (rssKb * 1024) / 1e6 <= 150,
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
