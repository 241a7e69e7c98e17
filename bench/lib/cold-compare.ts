// Cold starts side by side, shared by cold-start.ts and mount-vs-pull.ts: one image pushed as plain gzip
// (+ Ferry's published index) and, as asked, eStargz / zstd:chunked made by `ctr-remote image convert`; each
// runner starts it on a cold node (Ferry: `ferry mount`; containerd: `ctr image pull` + overlayfs, or
// `ctr-remote image rpull` + containerd-stargz-grpc), mounts it, and reads the same ops from a child process
// that hashes every byte. Registry bytes come from the registry's access log (and the veth on the shaped link).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseReference } from '../../src/image/reference.js';
import { startContainerd } from '../../test/helpers/containerd.js';
import { FERRY_BIN, ferry, ferryEnv, startMount } from '../../test/helpers/ferry-cli.js';
import { pushGzipImage, startBenchRegistry } from './bench-registry.js';
import { demandOf, demandTotal, describeDemand, publishedIndexes } from './demand.js';
import { byPath, startCountedRegistry, type CountedRegistry } from './counted-registry.js';
import { startCtrNode, type CtrMode } from './ctr-node.js';
import type { ReadOp } from './image-1g.js';
import { readSet, type ReadSetResult } from './read-set.js';
import { elapsed, fmtMB, fmtMs, percentile, say } from './report.js';
import { createRttLink, type RttLink } from './rtt-link.js';

const run = promisify(execFile);
const READ_CONCURRENCY = 4;
export const LINK = { rateMbit: 200, rttMs: 20 };
const ROOT = resolve(import.meta.dirname, '../..');

export type Format = 'gzip' | 'estargz' | 'zstdchunked';
const TAGS: Record<Format, string> = { gzip: 'gzip', estargz: 'esgz', zstdchunked: 'zstdchunked' };

export interface Runner {
  name: string;
  format: Format;
  kind: 'ferry' | CtrMode;
  /** Ferry on the plain gzip image with nothing published (repo `cold/plain`): the node builds every index. */
  noIndex?: boolean;
  /** Another build's `bin/ferry.js` (e.g. main's, to compare before/after in one run). */
  bin?: string;
}

export const PULL: Runner = { name: 'full pull (ctr, overlayfs)', format: 'gzip', kind: 'pull' };
export const STARGZ: Runner = { name: 'stargz-snapshotter, eStargz', format: 'estargz', kind: 'stargz' };
export const ferryRunner = (format: Format): Runner => ({
  name: { gzip: 'ferry, gzip + index', estargz: 'ferry, eStargz', zstdchunked: 'ferry, zstd:chunked' }[
    format
  ],
  format,
  kind: 'ferry',
});

/**
 * Ferry with no index anywhere (the first start ever: it streams every layer and builds); `bin` runs another
 * build of Ferry (FERRY_BEFORE_BIN in cold-start.ts), named `label`.
 */
export const ferryBuiltRunner = (bin?: string, label = ''): Runner => ({
  name: `ferry, gzip, no index${label === '' ? '' : ` (${label})`}`,
  format: 'gzip',
  kind: 'ferry',
  noIndex: true,
  ...(bin !== undefined ? { bin } : {}),
});

/** Ferry as containerd's snapshotter (`ferry daemon`, `ctr-remote image rpull`), no index anywhere. */
export const ferryCtdRunner = (bin?: string, label = ''): Runner => ({
  name: `ferry daemon + containerd, gzip, no index${label === '' ? '' : ` (${label})`}`,
  format: 'gzip',
  kind: 'ferry-ctd',
  noIndex: true,
  ...(bin !== undefined ? { bin } : {}),
});

export interface Sample {
  /** Start (spawn of `ferry mount`, or of the pull) until the rootfs is mounted. */
  readyMs: number;
  /** Start until every read of the app's start is done. */
  appMs: number;
  /** readyMs + the latency of the first read, timed by the reader itself. */
  ttfbMs: number;
  bytesBeforeReady: number;
  bytesUntilApp: number;
  vethBeforeReady?: number;
  vethUntilApp?: number;
  digest: string;
  breakdown: string;
  /** Ferry: the `mountMs` its `mounted` event reports (inside the process; the rest of readyMs is start-up). */
  inProcessMs?: number;
  /** Ferry: its `mounted` event's `stagesMs` (start = node start + module loading; then each stage's ms). */
  stages?: string;
  /** Ferry: each layer's index source and the ms it took to resolve (a build: stream + verify + store). */
  layers?: string;
  /** Ferry: CPU time (user + system) the mount process spent until its `mounted` event. */
  cpuMs?: number;
}

export interface Comparison {
  /** `<link>|<runner name>` → one sample per repetition. */
  results: Map<string, Sample[]>;
  links: string[];
  compressed: Map<Format, number>;
  notes: string[];
}

interface Link {
  name: string;
  host: string;
  registry: CountedRegistry;
  veth?: () => number;
}

/** Builds (or finds cached) containerd-stargz-grpc; undefined, with the reason printed, when it cannot. */
export async function buildStargz(): Promise<string | undefined> {
  try {
    const { stdout } = await run('bash', [join(ROOT, 'scripts/build-stargz-grpc.sh')], { timeout: 900_000 });
    return stdout.trim().split('\n').pop();
  } catch (e) {
    say(`containerd-stargz-grpc could not be built: ${(e as { stderr?: string }).stderr ?? String(e)}`);
    return undefined;
  }
}

/** The median over repetitions (the mean of the middle two for an even count). */
export function median(ss: readonly Sample[], f: (s: Sample) => number): number {
  const v = ss.map(f).sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

async function oneStart(
  runner: Runner,
  link: Link,
  diffIds: Map<Format, string[]>,
  stargzBin: string | undefined,
  ops: readonly ReadOp[],
  names: Map<string, string>,
): Promise<Sample> {
  const ref =
    runner.noIndex === true ? `${link.host}/cold/plain:gzip` : `${link.host}/cold/app:${TAGS[runner.format]}`;
  const veth0 = link.veth?.();
  const finish = async (
    readyMs: number,
    before: number,
    vethBefore: number | undefined,
    r: ReadSetResult,
    t0: number,
  ) => {
    const appMs = elapsed(t0);
    if (r.errors.length > 0)
      throw new Error(`${runner.name}: reads failed: ${r.errors.slice(0, 5).join(', ')}`);
    const until = await link.registry.settledBytes();
    const s: Sample = {
      readyMs,
      appMs,
      ttfbMs: readyMs + r.ttfbMs,
      bytesBeforeReady: before,
      bytesUntilApp: until,
      digest: r.digest,
      breakdown: [...byPath(link.registry.records())]
        .map(([k, v]) => `${names.get(k) ?? k} ${fmtMB(v)}`)
        .join(', '),
    };
    if (veth0 !== undefined && vethBefore !== undefined) {
      s.vethBeforeReady = vethBefore - veth0;
      s.vethUntilApp = link.veth!() - veth0;
    }
    return s;
  };
  if (runner.kind === 'ferry') {
    const env = ferryEnv('', `insecureHosts = ["${link.host}"]`);
    const target = join(env.dir, 'rootfs');
    link.registry.reset();
    const t0 = performance.now();
    const mount = await startMount(ref, target, env, 600_000, [], runner.bin);
    const readyMs = elapsed(t0);
    const vethBefore = link.veth?.();
    const before = await link.registry.settledBytes();
    try {
      const r = await readSet(target, ops, READ_CONCURRENCY);
      const s = await finish(readyMs, before, vethBefore, r, t0);
      const inProcess = mount.mounted['mountMs'];
      if (typeof inProcess === 'number') s.inProcessMs = inProcess;
      const layers = mount.mounted['layers'];
      if (Array.isArray(layers))
        s.layers = (layers as Array<Record<string, unknown>>)
          .map((l) => {
            const ms = l['indexMs'];
            return `${String(l['indexSource'])} ${typeof ms === 'number' ? String(ms) : '?'} ms`;
          })
          .join(', ');
      const cpu = mount.mounted['cpuMs'];
      if (typeof cpu === 'number') s.cpuMs = cpu;
      const stages = mount.mounted['stagesMs'];
      if (typeof stages === 'object' && stages !== null)
        s.stages = Object.entries(stages)
          .map(([k, v]) => `${k} ${String(v)}`)
          .join(', ');
      return s;
    } finally {
      await ferry(['umount', target], env).catch(() => mount.proc.kill('SIGTERM'));
      await mount.exited;
      rmSync(env.dir, { recursive: true, force: true });
    }
  }
  const node = await startCtrNode(runner.kind, stargzBin, { bin: runner.bin ?? FERRY_BIN, host: link.host });
  try {
    const target = join(node.dir, 'rootfs');
    link.registry.reset();
    const t0 = performance.now();
    await node.pull(ref);
    await node.mount(diffIds.get(runner.format)!, target);
    const readyMs = elapsed(t0);
    const vethBefore = link.veth?.();
    const before = await link.registry.settledBytes();
    const r = await readSet(target, ops, READ_CONCURRENCY);
    return await finish(readyMs, before, vethBefore, r, t0);
  } finally {
    await node.stop();
  }
}

/** Median round trip of `GET /v2/` and the rate of one whole-blob download, both timed here. */
async function measureLink(
  host: string,
  blob: { repo: string; digest: string; size: number },
): Promise<string> {
  const rtts: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    await (await fetch(`http://${host}/v2/`)).arrayBuffer();
    rtts.push(elapsed(t));
  }
  const t = performance.now();
  const res = await fetch(`http://${host}/v2/${blob.repo}/blobs/${blob.digest}`);
  const n = (await res.arrayBuffer()).byteLength;
  const ms = elapsed(t);
  if (n !== blob.size) throw new Error(`link probe read ${n} of ${blob.size} bytes`);
  const mbit = (n * 8) / 1e6 / (ms / 1000);
  return `GET /v2/ median ${fmtMs(percentile(rtts, 50))}; a ${fmtMB(n)} blob in ${fmtMs(ms)} = ${mbit.toFixed(0)} Mbit/s`;
}

export async function compareColdStarts(o: {
  layerPaths: readonly string[];
  ops: readonly ReadOp[];
  runners: readonly Runner[];
  reps: number;
  loopback: boolean;
  shaped: boolean;
  stargzBin: string | undefined;
}): Promise<Comparison> {
  const formats = new Set(o.runners.map((r) => r.format));
  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-cold-'));
  const bench = await startBenchRegistry();
  let loop: CountedRegistry | undefined;
  let link: RttLink | undefined;
  const results = new Map<string, Sample[]>();
  const compressed = new Map<Format, number>();
  const names = new Map<string, string>();
  const notes: string[] = [];
  const linkNames: string[] = [];
  try {
    await pushGzipImage(bench, 'cold/app:gzip', o.layerPaths);
    // The same image where nothing is ever published (referrers live per repository).
    if (o.runners.some((r) => r.noIndex === true))
      await pushGzipImage(bench, 'cold/plain:gzip', o.layerPaths);
    loop = await startCountedRegistry({
      addr: `127.0.0.1:${5100 + (process.pid % 800)}`,
      rootDir: bench.dataDir,
      workDir: work,
    });
    const plain = `${loop.addr}/cold/app:gzip`;
    const converted = [...formats].filter((f) => f !== 'gzip');
    if (converted.length > 0) {
      // ctr-remote converts what containerd holds: pull the gzip image into a private containerd first.
      const ctd = await startContainerd({ snapshotterSocket: join(work, 'none.sock') });
      try {
        await ctd.ctr(['image', 'pull', '--plain-http', plain], { timeoutMs: 600_000 });
        for (const f of converted) {
          const target = `${loop.addr}/cold/app:${TAGS[f]}`;
          const t = performance.now();
          await ctd.ctrRemote(['image', 'convert', `--${f}`, '--oci', plain, target], {
            timeoutMs: 1_800_000,
          });
          await ctd.ctr(['image', 'push', '--plain-http', target], { timeoutMs: 600_000 });
          say(`converted to ${f} with ctr-remote and pushed in ${fmtMs(elapsed(t))}`);
        }
      } finally {
        await ctd.stop();
      }
    }
    if (o.runners.some((r) => r.kind === 'ferry' && r.format === 'gzip' && r.noIndex !== true)) {
      const t = performance.now();
      const publisher = ferryEnv();
      await ferry(['index', plain, '--push'], publisher);
      rmSync(publisher.dir, { recursive: true, force: true });
      say(`ferry index --push (the publisher, once per image) took ${fmtMs(elapsed(t))}`);
      // Where a gzip start's bytes must go with these indexes: the index blobs, then the chunks the reads cover.
      const published = await publishedIndexes(bench.client, `${bench.registry.host}/cold/app:gzip`);
      const demand = demandOf(published.indexes, o.ops);
      const chunks = published.indexes.reduce((a, ix) => a + ix.chunks.length, 0);
      say(`published indexes: ${fmtMB(published.blobBytes)} fetched at mount (${chunks} chunks in all)`);
      for (const line of describeDemand(demand)) say(line);
      notes.push(
        `least a gzip start can fetch with these indexes: ${fmtMB(published.blobBytes + demandTotal(demand))} ` +
          `(index blobs ${fmtMB(published.blobBytes)} + the chunks the reads cover ${fmtMB(demandTotal(demand))}, ` +
          'before windows and prefetch)',
      );
    }
    const diffIds = new Map<Format, string[]>();
    for (const f of formats) {
      const resolved = await bench.client.resolve(
        parseReference(`${bench.registry.host}/cold/app:${TAGS[f]}`),
      );
      const m = resolved.manifest;
      compressed.set(
        f,
        m.layers.reduce((a, l) => a + l.size, 0),
      );
      m.layers.forEach((l, i) => names.set(`blob ${l.digest.slice(0, 19)}`, `${f} layer ${i}`));
      names.set(`blob ${m.config.digest.slice(0, 19)}`, `${f} config`);
      const config = JSON.parse(
        (await bench.client.fetchBlob(resolved.ref, m.config.digest, m.config.size)).toString(),
      ) as { rootfs: { diff_ids: string[] } };
      diffIds.set(f, config.rootfs.diff_ids);
      say(`${f}: ${m.layers.length} layers, ${fmtMB(compressed.get(f)!)} compressed`);
    }

    const links: Link[] = [];
    if (o.loopback) links.push({ name: 'loopback', host: loop.addr, registry: loop });
    if (o.shaped) {
      link = await createRttLink({ ...LINK, registryDataDir: bench.dataDir, workDir: work });
      say(`shaped link: ${link.description}`);
      const gz = await bench.client.resolve(parseReference(`${bench.registry.host}/cold/app:gzip`));
      const big = gz.manifest.layers.reduce((a, l) => (l.size > a.size ? l : a));
      const measured = await measureLink(link.host, { repo: 'cold/app', digest: big.digest, size: big.size });
      say(`shaped link measured: ${measured}`);
      notes.push(`shaped link (${link.description}) measured: ${measured}`);
      const l = link;
      links.push({
        name: `${LINK.rateMbit}mbit+${LINK.rttMs}ms`,
        host: l.host,
        registry: l.registry,
        veth: () => l.vethRxBytes(),
      });
    }
    for (const ln of links) {
      linkNames.push(ln.name);
      for (let rep = 0; rep < o.reps; rep++) {
        for (const runner of o.runners) {
          const s = await oneStart(runner, ln, diffIds, o.stargzBin, o.ops, names);
          const key = `${ln.name}|${runner.name}`;
          results.set(key, [...(results.get(key) ?? []), s]);
          say(
            `[${ln.name}] ${runner.name}: ready ${fmtMs(s.readyMs)} (${fmtMB(s.bytesBeforeReady)}), first byte ` +
              `${fmtMs(s.ttfbMs)}, app ready ${fmtMs(s.appMs)} (${fmtMB(s.bytesUntilApp)})` +
              (s.vethUntilApp === undefined
                ? ''
                : `; veth ${fmtMB(s.vethBeforeReady!)} / ${fmtMB(s.vethUntilApp)}`) +
              (s.inProcessMs === undefined ? '' : `; ferry's own mountMs ${fmtMs(s.inProcessMs)}`) +
              `; ${ln.registry.records().length} requests`,
          );
          if (s.stages !== undefined)
            say(
              `    ferry's stages (ms): ${s.stages}` +
                (s.cpuMs === undefined ? '' : `; CPU ${fmtMs(s.cpuMs)}`) +
                (s.layers === undefined ? '' : `; layers: ${s.layers}`),
            );
          say(`    by request (unnamed blobs: Ferry's index artifacts): ${s.breakdown}`);
        }
      }
      const digests = new Set(
        o.runners.flatMap((r) => (results.get(`${ln.name}|${r.name}`) ?? []).map((s) => s.digest)),
      );
      if (digests.size !== 1)
        throw new Error(`[${ln.name}] the start read different bytes on different paths`);
      say(`[${ln.name}] every path read the same bytes (sha256 of every read's sha1, in plan order)`);
    }
  } finally {
    await link?.close();
    await loop?.stop();
    await bench.close();
    rmSync(work, { recursive: true, force: true });
  }
  notes.push(
    'bytes: response bytes in the registry\'s access log (a response still in flight at "ready" counts once it completes)',
  );
  return { results, links: linkNames, compressed, notes };
}
