// Container-start benchmark through real containerd and `ferry daemon` (the snapshotter path, not `ferry mount`):
// pull + run of an image whose start reads a scattered working set, on fresh nodes: (a) cold, no trace (it records
// the trace, then pushes it), (b) cold with the trace from the registry, (c) cold after a completed prefetch Hint,
// (d) the image already pulled on node (b). On loopback and behind a shaped link, side by side in one run.
// Run: npx tsx bench/trace-start.ts [--rtt-ms 20] [--mbit 200] [--only loopback|shaped]
// (needs root, FUSE, docker-registry, containerd, ctr, ctr-remote, runc, busybox, `npm run build`)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { MediaType } from '../src/image/manifest.js';
import { gzipLayer, makeCorpus } from '../test/helpers/corpus.js';
import {
  BUSYBOX,
  CTR_REMOTE_BINARY,
  daemonLogRecords,
  requireBinaries,
  startContainerd,
  startFerryDaemon,
  stopHolder,
  tar,
  type RunningFerryDaemon,
  type TestContainerd,
} from '../test/helpers/containerd.js';
import { FERRY_BIN, ferry, ferryEnv, type FerryEnv } from '../test/helpers/ferry-cli.js';
import { pushImage } from '../test/helpers/push-image.js';
import { startRegistry, testRegistryClient } from '../test/helpers/registry.js';
import { ferryWith } from '../test/prefetch/mount-process.js';
import { shapedProxy } from './lib/shaped-proxy.js';
import { corpusWorkingSet } from './lib/corpus-working-set.js';

const { values: args } = parseArgs({
  options: {
    'rtt-ms': { type: 'string', default: '20' },
    mbit: { type: 'string', default: '200' },
    only: { type: 'string' },
    'small-files': { type: 'string', default: '6000' },
  },
});
const SMALL_FILES = Number(args['small-files']);

// A trace is complete after 1.5 s without reads (the run is over by then); the rest are Ferry's defaults.
const CONFIG = `
[index]
chunkSizeBytes = 65536
spanBytes = 262144

[prefetch]
quietMs = 1500
windowMs = 600000
`;

const WORKING_SET = corpusWorkingSet(SMALL_FILES);

interface Node {
  env: FerryEnv;
  daemon: RunningFerryDaemon;
  ctd: TestContainerd;
  runs: number;
}

async function startNode(): Promise<Node> {
  const env = ferryEnv(CONFIG);
  const paths = {
    socketPath: join(env.dir, 'run', 'snapshotter.sock'),
    root: join(env.dir, 'state', 'snapshots'),
  };
  const daemon = await startFerryDaemon(FERRY_BIN, env.configPath, paths);
  const ctd = await startContainerd({ snapshotterSocket: paths.socketPath });
  return { env, daemon, ctd, runs: 0 };
}

async function stopNode(n: Node): Promise<void> {
  await n.ctd.stop();
  await n.daemon.stop().catch(() => undefined);
  await stopHolder(n.daemon.holderPid).catch(() => undefined);
}

interface Start {
  pullMs: number;
  runMs: number;
  /** Wall clock (ms since the epoch) when the pull began, to place the daemon's log lines. */
  at: number;
}

/** `ctr-remote image rpull` then `ctr run` of the working-set reader; times each. */
async function start(n: Node, ref: string): Promise<Start> {
  const at = Date.now();
  const t0 = performance.now();
  await n.ctd.ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref], {
    timeoutMs: 300_000,
  });
  const t1 = performance.now();
  const script = '/bin/busybox xargs /bin/busybox cat < /ws.list > /dev/null && echo read';
  const { stdout } = await n.ctd.ctr(
    ['run', '--rm', '--snapshotter', 'ferry', ref, `c${n.runs++}`, '/bin/busybox', 'sh', '-c', script],
    { timeoutMs: 300_000 },
  );
  if (stdout.trim() !== 'read') throw new Error(`the start failed: ${stdout}`);
  return { pullMs: t1 - t0, runMs: performance.now() - t1, at };
}

/** Waits until node `n`'s daemon saved a trace of `ref` (its recorder closes after quietMs without reads). */
async function waitForTrace(n: Node, ref: string): Promise<{ chunks: number; bytes: number }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const shown = await ferryWith(['trace', 'show', ref, '--json'], n.env).catch(() => undefined);
    if (shown !== undefined) return JSON.parse(shown) as { chunks: number; bytes: number };
    if (Date.now() > deadline) throw new Error(`no trace saved: ${n.daemon.stderr().slice(-4000)}`);
    await sleep(500);
  }
}

/** The daemon's own account of a start's prefetch: when it was planned and what the start then used of it. */
async function prefetchSummary(n: Node, s: Start): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const records = daemonLogRecords(n.daemon, s.at);
    const planned = records.find((r) => r['msg'] === 'prefetch planned');
    const done = records.find((r) => r['msg'] === 'prefetch finished');
    if (done !== undefined || Date.now() > deadline) {
      const at =
        planned === undefined ? '?' : `${(planned['time'] as number) - s.at} ms after the pull began`;
      const st = (k: string): string => {
        const v = done?.[k];
        return typeof v === 'number' ? String(v) : '?';
      };
      return (
        `planned ${at} (pull took ${s.pullMs.toFixed(0)} ms); fetched ${st('fetched')}, hits ${st('hits')}, ` +
        `joined ${st('joined')}, demanded first ${st('demandedFirst')}, of ${st('demandChunks')} chunks read`
      );
    }
    await sleep(250);
  }
}

/**
 * Each lazy layer's Prepare on node `n` since start `s`: the snapshotter's time for it, the lazy mount's index
 * resolution within it, and whether a hint had resolved its index (`h`) and built its tree (`t`).
 */
function prepareSummary(n: Node, s: Start): string {
  const records = daemonLogRecords(n.daemon, s.at);
  const mounted = new Map(
    records.filter((r) => r['msg'] === 'lazy layer mounted').map((r) => [r['layer'], r] as const),
  );
  const parts = records
    .filter((r) => r['msg'] === 'remote snapshot prepared')
    .map((r) => {
      const m = mounted.get(r['layer']);
      const index = typeof m?.['indexMs'] === 'number' ? `/${m['indexMs']}` : '';
      const flags = `${m?.['hinted'] === true ? 'h' : ''}${m?.['treeReady'] === true ? 't' : ''}`;
      return `${Math.round(Number(r['ms']))}${index}${flags}`;
    });
  const legend = 'ms per Prepare/of it index; h = index resolved by the hint, t = tree built by it';
  return `layer Prepares (${legend}): ${parts.join(' ') || 'none'}`;
}

const fmt = (s: Start): string =>
  `pull ${s.pullMs.toFixed(0).padStart(5)} ms + run ${s.runMs.toFixed(0).padStart(5)} ms = ${(s.pullMs + s.runMs).toFixed(0).padStart(5)} ms`;
const total = (s: Start): number => s.pullMs + s.runMs;

async function linkRound(name: string, ref: string): Promise<string[]> {
  const out: string[] = [];
  const a = await startNode();
  let shown: { chunks: number; bytes: number };
  let ra: Start;
  try {
    ra = await start(a, ref);
    shown = await waitForTrace(a, ref);
    await ferryWith(['trace', 'push', ref], a.env);
  } finally {
    await stopNode(a);
  }
  const b = await startNode();
  let rb: Start;
  let rd: Start;
  let bPrefetch: string;
  try {
    rb = await start(b, ref);
    bPrefetch = await prefetchSummary(b, rb);
    rd = await start(b, ref); // the image is pulled and its chunks are local now
  } finally {
    await stopNode(b);
  }
  const c = await startNode();
  let rc: Start;
  let hintMs: number;
  let cPrepares: string;
  try {
    const t0 = performance.now();
    const final = JSON.parse(
      (await ferryWith(['prefetch', ref, '--wait', '--json'], c.env)).trim().split('\n').at(-1)!,
    ) as Record<string, unknown>;
    hintMs = performance.now() - t0;
    if (final['phase'] !== 'DONE') throw new Error(`hint did not finish: ${JSON.stringify(final)}`);
    rc = await start(c, ref);
    cPrepares = prepareSummary(c, rc);
  } finally {
    await stopNode(c);
  }
  out.push(`${name}: trace ${shown.chunks} chunks / ${(shown.bytes / 1e6).toFixed(1)} MB`);
  out.push(`  (a) cold, no trace               ${fmt(ra)}`);
  out.push(`  (b) cold, trace from registry    ${fmt(rb)}`);
  out.push(`      prefetch of (b): ${bPrefetch}`);
  out.push(`  (c) cold after a completed hint  ${fmt(rc)}  (hint ${hintMs.toFixed(0)} ms before)`);
  out.push(`      ${cPrepares}`);
  out.push(`  (d) image already pulled         ${fmt(rd)}`);
  const rbA = total(rb) / total(ra);
  const rcD = total(rc) / total(rd);
  out.push(
    `  traced/untraced (b)/(a): ${rbA.toFixed(2)}x (target <= 0.8x): ${rbA <= 0.8 ? 'met' : 'NOT met'}`,
  );
  out.push(
    `  hinted/pre-pulled (c)/(d): ${rcD.toFixed(2)}x (target <= 1.2x): ${rcD <= 1.2 ? 'met' : 'NOT met'}`,
  );
  return out;
}

async function main(): Promise<void> {
  requireBinaries([CTR_REMOTE_BINARY, BUSYBOX]);
  const registry = await startRegistry();
  const client = testRegistryClient();
  const lines: string[] = [];
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  try {
    // The corpus tree is only needed for its tars: removed at once, so a direct run leaves nothing behind.
    const corpusDir = mkdtempSync(join(tmpdir(), 'ferry-bench-ts-'));
    const corpus = makeCorpus(join(corpusDir, 'src'), {
      smallFiles: SMALL_FILES,
      bigFileBytes: 16 * 1024 * 1024,
    });
    rmSync(corpusDir, { recursive: true, force: true });
    const base = gzipLayer(
      await tar([
        { name: 'bin', type: 'directory' },
        { name: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
        { name: 'ws.list', data: Buffer.from(WORKING_SET.map((p) => `/${p}\n`).join('')) },
      ]),
    );
    const layers = [base, ...corpus.map((l) => gzipLayer(l.tar))].map((data) => ({
      data,
      mediaType: MediaType.ociLayerGzip,
    }));
    const links: Array<[string, string, () => void]> = [];
    if (args.only !== 'shaped') links.push(['loopback', registry.host, () => undefined]);
    if (args.only !== 'loopback') {
      const p = await shapedProxy(registry.host, {
        rttMs: Number(args['rtt-ms']),
        bytesPerMs: (Number(args.mbit) * 1e6) / 8 / 1000,
      });
      links.push([`${args.mbit} Mbit/s + ${args['rtt-ms']} ms RTT`, p.host, () => p.close()]);
    }
    try {
      for (const [i, [name, host]] of links.entries()) {
        // One repository per link: a trace pushed for one must not be found by the other's cold node.
        const ref = `${host}/bench-ts${i}:1`;
        await pushImage(client, `${registry.host}/bench-ts${i}:1`, { layers });
        await ferry(['index', ref, '--push'], ferryEnv(CONFIG));
        lines.push(...(await linkRound(name, ref)));
      }
    } finally {
      for (const [, , close] of links) close();
    }
    const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log(`working set: ${WORKING_SET.length} files; load average ${load0} -> ${load1}`);
    for (const l of lines) console.log(l);
  } finally {
    await client.close();
    await registry.stop();
  }
}

await main();
