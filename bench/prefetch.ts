// Prefetch benchmark: one generated gzip image behind a shaped link (RTT + bandwidth, like a remote registry);
// time to read a scattered ~5% working set on (a) a cold node without a trace, (b) a cold node that pulls the
// trace recorded in (a) from the registry, (c) a cold node whose daemon got a prefetch Hint (`ferry prefetch
// --wait`) before the start, (d) the same node as (b) warm. Prints times and ratios from one run.
// Run: npx tsx bench/prefetch.ts [--rtt-ms 20] [--mbit 200] (needs root, FUSE, docker-registry, `npm run build`)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MediaType } from '../src/image/manifest.js';
import { silentLogger } from '../src/log.js';
import { RegistryClient } from '../src/registry/client.js';
import { gzipLayer, makeCorpus } from '../test/helpers/corpus.js';
import { ferry, ferryEnv, type FerryEnv } from '../test/helpers/ferry-cli.js';
import { pushImage } from '../test/helpers/push-image.js';
import { startRegistry } from '../test/helpers/registry.js';
import { startFerryDaemon } from '../test/helpers/containerd.js';
import { FERRY_BIN } from '../test/helpers/ferry-cli.js';
import { ferryWith, readWorkingSet, spawnMount, type Event } from '../test/prefetch/mount-process.js';
import { shapedProxy } from './lib/shaped-proxy.js';
import { corpusWorkingSet } from './lib/corpus-working-set.js';

const { values: args } = parseArgs({
  options: {
    'rtt-ms': { type: 'string', default: '20' },
    mbit: { type: 'string', default: '200' },
    'small-files': { type: 'string', default: '6000' },
  },
});
const RTT_MS = Number(args['rtt-ms']);
const BYTES_PER_MS = (Number(args.mbit) * 1e6) / 8 / 1000;
const SMALL_FILES = Number(args['small-files']);

const CONFIG = `
[index]
chunkSizeBytes = 65536
spanBytes = 262144

[prefetch]
quietMs = 600000
windowMs = 600000
`;

const WORKING_SET = corpusWorkingSet(SMALL_FILES);

interface Run {
  name: string;
  mountMs: number;
  readMs: number;
  linkBytes: number;
  /** Link bytes while mounting (manifests, indexes, trace, early prefetch). */
  mountLinkBytes: number;
  prefetched?: Event;
}

/** Mounts, reads the working set as soon as the mount is up (racing the prefetch, as a real start would). */
async function startOnce(name: string, ref: string, env: FerryEnv, link: { bytes(): number }): Promise<Run> {
  const target = join(env.dir, 'rootfs');
  const t0 = performance.now();
  const bytes0 = link.bytes();
  const m = spawnMount(ref, target, env);
  try {
    await m.waitFor('mounted');
    const mountMs = performance.now() - t0;
    const mountLinkBytes = link.bytes() - bytes0;
    const readMs = await readWorkingSet(target, WORKING_SET);
    const prefetched = await m.waitFor('prefetched', 600_000);
    const linkBytes = link.bytes() - bytes0;
    await ferry(['umount', target], env);
    await m.exited;
    return { name, mountMs, readMs, linkBytes, mountLinkBytes, prefetched };
  } finally {
    await m.stop();
  }
}

/** Node `env` gets a Hint through its daemon (waited for), then the daemon stops; returns the hint's ms. */
async function hintNode(ref: string, env: FerryEnv): Promise<{ ms: number; final: Record<string, unknown> }> {
  const daemon = await startFerryDaemon(FERRY_BIN, env.configPath, {
    socketPath: join(env.dir, 'run', 'snapshotter.sock'),
    root: join(env.dir, 'state', 'snapshots'),
  });
  try {
    const t0 = performance.now();
    const out = await ferryWith(['prefetch', ref, '--wait', '--json'], env);
    const ms = performance.now() - t0;
    const final = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    if (final['phase'] !== 'DONE') throw new Error(`hint did not finish: ${JSON.stringify(final)}`);
    return { ms, final };
  } finally {
    await daemon.stop();
  }
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  const link = await shapedProxy(registry.host, { rttMs: RTT_MS, bytesPerMs: BYTES_PER_MS });
  const client = new RegistryClient({
    log: silentLogger(),
    requestTimeoutMs: 60_000,
    maxConcurrencyPerHost: 8,
    retries: 2,
  });
  try {
    const corpus = makeCorpus(join(mkdtempSync(join(tmpdir(), 'ferry-bench-pf-')), 'src'), {
      smallFiles: SMALL_FILES,
      bigFileBytes: 16 * 1024 * 1024,
    });
    const layers = corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip }));
    await pushImage(client, `${registry.host}/bench:1`, { layers });
    const imageBytes = layers.reduce((s, l) => s + l.data.length, 0);
    const ref = `${link.host}/bench:1`;
    await ferry(['index', ref, '--push'], ferryEnv(CONFIG)); // indexes come from the registry on every node

    const a = await startOnce('(a) cold, no trace', ref, ferryEnv(CONFIG), link);
    const recorder = ferryEnv(CONFIG);
    const rec = await startOnce('(record) cold, records the trace', ref, recorder, link);
    await ferryWith(['trace', 'push', ref], recorder);
    const nodeB = ferryEnv(CONFIG);
    const b = await startOnce('(b) cold, trace from the registry', ref, nodeB, link);
    const d = await startOnce('(d) warm (same node again)', ref, nodeB, link);
    const nodeC = ferryEnv(CONFIG);
    const hint = await hintNode(ref, nodeC);
    const c = await startOnce('(c) after a completed Hint', ref, nodeC, link);

    const shown = JSON.parse(await ferryWith(['trace', 'show', ref, '--json'], recorder)) as {
      bytes: number;
      chunks: number;
    };
    const wsLinkMs = shown.bytes / BYTES_PER_MS;
    const rows = [a, rec, b, c, d];
    console.log(
      `link: ${RTT_MS} ms RTT, ${args.mbit} Mbit/s; image ${(imageBytes / 1e6).toFixed(1)} MB compressed`,
    );
    console.log(
      `working set: ${WORKING_SET.length} files, trace ${shown.chunks} chunks / ${(shown.bytes / 1e6).toFixed(2)} MB ` +
        `(${wsLinkMs.toFixed(0)} ms of link time)`,
    );
    for (const r of rows) {
      const pf = r.prefetched as {
        traceOrigin?: string;
        stats?: { fetched: number; hits: number; demandChunks: number };
      };
      console.log(
        `${r.name.padEnd(36)} mount ${r.mountMs.toFixed(0).padStart(6)} ms  read ${r.readMs.toFixed(0).padStart(6)} ms  ` +
          `link ${(r.mountLinkBytes / 1e6).toFixed(1)}+${((r.linkBytes - r.mountLinkBytes) / 1e6).toFixed(1)} MB  prefetch(${pf.traceOrigin}) fetched ${pf.stats?.fetched} ` +
          `hits ${pf.stats?.hits}/${pf.stats?.demandChunks}`,
      );
    }
    console.log(
      `hint on node C: ${hint.ms.toFixed(0)} ms for ${String(hint.final['chunks_done'])} chunks ` +
        `(${(Number(hint.final['bytes_done']) / 1e6).toFixed(1)} MB, trace: ${String(hint.final['trace_origin'])})`,
    );
    const cReady = c.mountMs + c.readMs;
    const dReady = d.mountMs + d.readMs;
    console.log(
      `(c)/(d) ready-time ratio: ${(cReady / dReady).toFixed(2)}x (target <= 1.2x): ${cReady <= 1.2 * dReady ? 'met' : 'NOT met'}` +
        `; read-only ratio ${(c.readMs / d.readMs).toFixed(2)}x`,
    );
    console.log(`read-time ratio cold/trace-prefetched (a)/(b): ${(a.readMs / b.readMs).toFixed(2)}x`);
    console.log(
      `ready-time ratio (a)/(b) incl. mount: ${((a.mountMs + a.readMs) / (b.mountMs + b.readMs)).toFixed(2)}x`,
    );
    const bReady = b.mountMs + b.readMs;
    const target = 1.3 * (d.mountMs + d.readMs + wsLinkMs);
    console.log(
      `target (b) <= 1.3 x ((d) + ws bytes/link) = ${target.toFixed(0)} ms; (b) = ${bReady.toFixed(0)} ms: ` +
        (bReady <= target ? 'met' : 'NOT met'),
    );
    // gzip (zran) chunks cost their checkpoint span on the link, not just their own bytes: count what the
    // cold start's demand reads really moved.
    const wsWireMs = (a.linkBytes - a.mountLinkBytes) / BYTES_PER_MS;
    const target2 = 1.3 * (d.mountMs + d.readMs + wsWireMs);
    console.log(
      `with ws bytes as moved on the wire by (a) (${((a.linkBytes - a.mountLinkBytes) / 1e6).toFixed(1)} MB): ` +
        `target ${target2.toFixed(0)} ms: ${bReady <= target2 ? 'met' : 'NOT met'}`,
    );
  } finally {
    await client.close();
    link.close();
    await registry.stop();
  }
}

await main();
