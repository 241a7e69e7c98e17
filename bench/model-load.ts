// Benchmark: model loading. `cat file > /dev/null` of a 2 GiB incompressible and a 2 GiB compressible file
// (one gzip layer each) through a cold `ferry mount`, against the link's raw rate (a plain HTTP GET of the
// same blob, same run) and a full pull + extract + read; time to first byte; the mount's RSS. The registry sits
// behind a link shaped with `tc tbf` (200 Mbit/s, then 1 Gbit/s) on a veth into a network namespace created
// for the run (10.235.x.0/30, removed on exit); an application-level token bucket stands in if tbf is missing.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { silentLogger } from '../src/log.js';
import { RegistryClient } from '../src/registry/client.js';
import { ferry, ferryEnv, startMount } from '../test/helpers/ferry-cli.js';
import { REGISTRY_BINARY } from '../test/helpers/registry.js';
import { pushGzipImage, startBenchRegistry } from './lib/bench-registry.js';
import { fmtRss, RssSampler, servedFrom } from './lib/ferry-node.js';
import { fullPull } from './lib/full-pull.js';
import { cached, fastText } from './lib/gen.js';
import { pseudoRandom } from '../test/helpers/corpus.js';
import {
  elapsed,
  emitResults,
  fmtMB,
  fmtMs,
  fmtRate,
  fmtRatio,
  GiB,
  MiB,
  parseArgs,
  say,
} from './lib/report.js';
import type { ResultRow } from './lib/report.js';
import { ThrottleRelay } from './lib/throttle-relay.js';

const run = promisify(execFile);
const FILES = [
  { path: 'models/weights-random.bin', content: 'random' as const, seed: 9001 },
  { path: 'models/weights-text.bin', content: 'text' as const, seed: 9002 },
];
const TARGETS: Record<number, number> = { 200: 0.85, 1000: 0.7 };

/**
 * A gzip layer holding one file of `size` bytes, written in 8 MiB pieces with distinct odd seeds (the
 * generators use `seed | 1`, so consecutive seeds would repeat pieces and dedupe half the chunks away).
 */
async function modelLayer(f: (typeof FILES)[number], size: number, fresh: boolean): Promise<string> {
  const key = `model-load-${f.content}-${size}-pigz6.tar.gz`;
  const { path } = await cached(key, fresh, async (tmp) => {
    const root = `${tmp}.d`;
    const file = join(root, f.path);
    mkdirSync(dirname(file), { recursive: true });
    const fd = openSync(file, 'w');
    try {
      for (let k = 0; k * 8 * MiB < size; k++) {
        const n = Math.min(8 * MiB, size - k * 8 * MiB);
        const seed = (f.seed + k) * 2 + 1;
        writeSync(fd, f.content === 'random' ? pseudoRandom(n, seed) : fastText(n, seed));
      }
    } finally {
      closeSync(fd);
    }
    const pack = `set -o pipefail; tar --sort=name --numeric-owner -C "${root}" -cf - . | pigz -6 > "${tmp}"`;
    try {
      await run('bash', ['-c', pack]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  return path;
}

interface Link {
  host: string;
  mode: string;
  close(): Promise<void>;
}

/** netns + veth + tbf on both ends, docker-registry inside serving the loopback registry's storage. */
async function tbfLink(rateMbit: number, dataDir: string, work: string): Promise<Link> {
  const tag = `${process.pid % 10000}${rateMbit}`;
  const ns = `ferry-ml-${tag}`;
  const [hostIf, nsIf] = [`fmlh${tag}`.slice(0, 15), `fmln${tag}`.slice(0, 15)];
  const used = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  let x = 0;
  while (used.includes(`10.235.${x}.`) && x < 250) x++;
  const [hostAddr, nsAddr] = [`10.235.${x}.1`, `10.235.${x}.2`];
  let registry: ChildProcess | undefined;
  const cleanup = (): void => {
    registry?.kill('SIGKILL');
    for (const a of [
      ['netns', 'del', ns],
      ['link', 'del', hostIf],
    ])
      try {
        execFileSync('ip', a, { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
  };
  process.once('exit', cleanup);
  const sh = (cmd: string, ...args: string[]): void => void execFileSync(cmd, args, { stdio: 'pipe' });
  try {
    sh('ip', 'netns', 'add', ns);
    sh('ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    sh('ip', 'link', 'set', nsIf, 'netns', ns);
    sh('ip', 'addr', 'add', `${hostAddr}/30`, 'dev', hostIf);
    sh('ip', 'link', 'set', hostIf, 'up');
    sh('ip', '-n', ns, 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf);
    sh('ip', '-n', ns, 'link', 'set', nsIf, 'up');
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    const tbf = ['root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', '256kb', 'latency', '50ms'];
    sh('tc', 'qdisc', 'add', 'dev', hostIf, ...tbf);
    sh('ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', nsIf, ...tbf);
    const host = `${nsAddr}:5000`;
    const config = join(work, `registry-${ns}.yml`);
    writeFileSync(
      config,
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n` +
        `    rootdirectory: ${dataDir}\nhttp:\n  addr: ${host}\n`,
    );
    registry = spawn('ip', ['netns', 'exec', ns, REGISTRY_BINARY, 'serve', config], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      if (
        await fetch(`http://${host}/v2/`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 300) throw new Error('namespaced registry did not come up');
      await sleep(50);
    }
    return {
      host,
      mode: `tc tbf ${rateMbit}mbit burst 256kb latency 50ms, veth ${hostIf} ${hostAddr} <-> netns ${ns} ${nsAddr}`,
      close: () => Promise.resolve(cleanup()),
    };
  } catch (e) {
    cleanup();
    throw e;
  }
}

async function link(rateMbit: number, dataDir: string, loopback: string, work: string): Promise<Link> {
  try {
    return await tbfLink(rateMbit, dataDir, work);
  } catch (e) {
    say(`tbf unavailable (${String(e).split('\n')[0]}): using the application-level token-bucket relay`);
    const relay = await new ThrottleRelay({
      upstream: loopback,
      rateBitsPerSec: rateMbit * 1e6,
      burstBytes: 256 * 1024,
    }).start();
    return { host: relay.host, mode: `app-level token bucket ${rateMbit} Mbit/s`, close: () => relay.stop() };
  }
}

/** A plain HTTP GET of the blob, bytes discarded: the link's raw rate for one stream, and its TTFB. */
async function rawGet(
  host: string,
  repo: string,
  digest: string,
): Promise<{ bytes: number; ms: number; ttfbMs: number }> {
  const t0 = performance.now();
  const res = await fetch(`http://${host}/v2/${repo}/blobs/${digest}`);
  if (!res.ok || res.body === null) throw new Error(`GET blob: HTTP ${res.status}`);
  let bytes = 0;
  let ttfbMs = 0;
  for await (const piece of res.body) {
    if (bytes === 0) ttfbMs = elapsed(t0);
    bytes += (piece as Uint8Array).length;
  }
  return { bytes, ms: elapsed(t0), ttfbMs };
}

async function timed(cmd: string): Promise<number> {
  const t0 = performance.now();
  await run('sh', ['-c', cmd], { maxBuffer: 1 << 20 });
  return elapsed(t0);
}

async function main(): Promise<void> {
  const args = parseArgs();
  const size = args.quick ? 512 * MiB : 2 * GiB;
  const rates = (process.env['FERRY_BENCH_RATES'] ?? '200,1000').split(',').map(Number);
  say(
    `# model-load${args.quick ? ' (--quick)' : ''}: two ${fmtMB(size)} files, links ${rates.join(', ')} Mbit/s`,
  );
  const t = performance.now();
  const layers: string[] = [];
  for (const f of FILES) layers.push(await modelLayer(f, size, args.noCache));
  say(`layers ready in ${fmtMs(elapsed(t))}`);
  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-model-'));
  const bench = await startBenchRegistry();
  const rows: ResultRow[] = [];
  const notes: string[] = [];
  try {
    const img = await pushGzipImage(bench, 'model:bench', layers);
    await ferry(['index', `${bench.registry.host}/${img.repoTag}`, '--push'], ferryEnv());
    const blobSizes = await Promise.all(
      img.layerDigests.map(async (d) =>
        (await fetch(`http://${bench.registry.host}/v2/model/blobs/${d}`, { method: 'HEAD' })).headers.get(
          'content-length',
        ),
      ),
    );
    say(`pushed; layer blobs ${blobSizes.map((b) => fmtMB(Number(b))).join(' + ')}; indexes published`);
    for (const rate of rates) {
      const l = await link(rate, bench.dataDir, bench.registry.host, work);
      say(`\n## ${rate} Mbit/s: ${l.mode}`);
      try {
        const raw = await rawGet(l.host, 'model', img.layerDigests[0]!);
        const rawRate = raw.bytes / raw.ms;
        say(`raw GET of the random layer blob: ${fmtRate(raw.bytes, raw.ms)} (TTFB ${fmtMs(raw.ttfbMs)})`);
        // Ferry, cold: fresh state and cache; the index comes from the registry.
        // Startup prefetch off: its default 4 MiB per layer would share the link with the first read.
        const env = ferryEnv('[prefetch]\nenabled = false\n', `insecureHosts = ["${l.host}"]`);
        const target = join(env.dir, 'rootfs');
        const m = await startMount(`${l.host}/${img.repoTag}`, target, env, 600_000);
        const rss = new RssSampler(m.proc.pid!);
        await rss.sample();
        const idleKb = rss.reading().peakKb;
        const spawnMs = await timed('head -c 1 /etc/hostname > /dev/null');
        const ttfb = Math.max(
          0,
          (await timed(`head -c 1 "${target}/${FILES[0]!.path}" > /dev/null`)) - spawnMs,
        );
        const catMs: number[] = [];
        for (const f of FILES) catMs.push(await timed(`cat "${target}/${f.path}" > /dev/null`));
        await ferry(['umount', target], env).catch(() => m.proc.kill('SIGTERM'));
        const exit = await m.exited;
        const peak = rss.stop();
        const served = servedFrom(exit.unmounted);
        rmSync(env.dir, { recursive: true, force: true });
        // Full pull + extract + read of both files.
        const client = new RegistryClient({
          log: silentLogger(),
          insecureHosts: [l.host],
          requestTimeoutMs: 600_000,
          maxConcurrencyPerHost: 8,
          retries: 1,
        });
        const dir = join(work, `pull-${rate}`);
        const pull = await fullPull(client, `${l.host}/${img.repoTag}`, dir);
        await client.close();
        let readMs = 0;
        for (const f of FILES) readMs += await timed(`cat "${dir}/${f.path}" > /dev/null`);
        rmSync(dir, { recursive: true, force: true });
        const target0 = TARGETS[rate] ?? 0.7;
        const ratio = size / catMs[0]! / rawRate;
        rows.push(
          {
            metric: `${rate}M random file rate (cat)`,
            ferry: fmtRate(size, catMs[0]!),
            baseline: `${fmtRate(raw.bytes, raw.ms)} raw GET`,
            ratio: fmtRatio(ratio),
            target: `>= ${target0}x raw`,
            met: ratio >= target0,
          },
          {
            metric: `${rate}M text file rate (cat)`,
            ferry: fmtRate(size, catMs[1]!),
            baseline: `${fmtRate(raw.bytes, raw.ms)} raw GET`,
            ratio: fmtRatio(size / catMs[1]! / rawRate),
            target: 'file bytes/s (compressed on the wire)',
          },
          {
            metric: `${rate}M both files: mount cat vs pull+extract+read`,
            ferry: fmtMs(catMs[0]! + catMs[1]!),
            baseline: fmtMs(pull.totalMs + readMs),
            ratio: fmtRatio((catMs[0]! + catMs[1]!) / (pull.totalMs + readMs)),
            target: '< 1x',
            met: catMs[0]! + catMs[1]! < pull.totalMs + readMs,
          },
          {
            metric: `${rate}M time to first byte`,
            ferry: fmtMs(ttfb),
            baseline: `${fmtMs(raw.ttfbMs)} raw GET`,
            ratio: '',
            target: '<= 200 ms',
            met: ttfb <= 200,
          },
          {
            metric: `${rate}M ferry peak RSS`,
            ferry: fmtRss(peak.peakKb),
            baseline: `${fmtRss(idleKb)} idle after mount`,
            ratio: '',
            target: '<= 250 MB',
            met: (peak.peakKb * 1024) / 1e6 <= 250,
          },
        );
        notes.push(
          `${rate}M: origin ${served.origin.chunks} chunks / ${fmtMB(served.origin.bytes)}; pull ${fmtMs(pull.pullMs)} ` +
            `download, ${fmtMs(pull.totalMs)} with extract, read ${fmtMs(readMs)}; link ${l.mode}`,
        );
      } finally {
        await l.close();
      }
    }
  } finally {
    await bench.close();
    rmSync(work, { recursive: true, force: true });
  }
  emitResults('model-load', rows, notes);
}

await main();
