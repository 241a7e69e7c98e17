// Registry egress and time-to-working-set for N = 1, 2, 4, 8 `ferry mount` nodes in network namespaces, all
// reading the same working set at once, the registry's link shaped to a WAN-ish rate. Ratios are against N = 1.
// Run: npm run build && node --import tsx/esm bench/p2p.ts [--mbit 200] [--files 24]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createNetnsCluster,
  readFiles,
  seedRegistry,
  startFerryNode,
  startRegistryIn,
  stopFerryNode,
  type FerryNode,
} from '../test/helpers/netns-cluster.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MBIT = arg('mbit', 200);
const FILES = arg('files', 24);
const SIZES = [1, 2, 4, 8];

interface Row {
  n: number;
  egressBytes: number;
  msMax: number;
  msMedian: number;
  peerChunks: number;
  registryChunks: number;
}

async function main(): Promise<void> {
  const cluster = createNetnsCluster(Math.max(...SIZES));
  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-p2p-'));
  let registry: { stop(): Promise<void> } | undefined;
  const live: FerryNode[] = [];
  try {
    const seeded = await seedRegistry(work, { files: FILES, fileBytes: 1 << 20, repo: 'bench/p2p:1' });
    registry = await startRegistryIn({ dataDir: work, addr: cluster.registryAddr, ns: cluster.registryNs });
    await cluster.shapeRegistry(MBIT);
    const ref = `${cluster.registryAddr}/bench/p2p:1`;
    const rows: Row[] = [];
    for (const n of SIZES) {
      const nodes = Array.from({ length: n }, (_, i) => startFerryNode(cluster, i, { ref, peers: n }));
      live.push(...nodes);
      await Promise.all(nodes.map((x) => x.mounted));
      await new Promise((r) => setTimeout(r, 2500));
      const before = await cluster.registryTxBytes();
      const t0 = performance.now();
      const times = await Promise.all(
        nodes.map(async (x) => {
          const got = await readFiles(cluster, x, seeded.files);
          for (const [f, sha] of got)
            if (seeded.sha.get(f) !== sha) throw new Error(`node ${x.i}: ${f} is wrong`);
          return performance.now() - t0;
        }),
      );
      const egressBytes = (await cluster.registryTxBytes()) - before;
      const events = await Promise.all(nodes.map(stopFerryNode));
      live.length = 0;
      const sum = (k: 'peer' | 'origin') =>
        events.reduce(
          (a, e) => a + ((e?.['served'] as Record<string, { chunks: number }> | undefined)?.[k]?.chunks ?? 0),
          0,
        );
      times.sort((a, b) => a - b);
      rows.push({
        n,
        egressBytes,
        msMax: times[times.length - 1]!,
        msMedian: times[Math.floor(times.length / 2)]!,
        peerChunks: sum('peer'),
        registryChunks: sum('origin'),
      });
    }
    const base = rows[0]!;
    console.log(`\nP2P: ${FILES} files × ~1 MiB read by every node at once; registry link ${MBIT} Mbit/s\n`);
    console.log('  N   registry egress   vs N=1   time (max)  vs N=1   median ms   chunks: registry / peer');
    for (const r of rows) {
      console.log(
        `  ${String(r.n).padStart(1)}   ${(r.egressBytes / 2 ** 20).toFixed(1).padStart(9)} MiB   ${(r.egressBytes / base.egressBytes).toFixed(2).padStart(5)}x` +
          `   ${Math.round(r.msMax).toString().padStart(7)} ms  ${(r.msMax / base.msMax).toFixed(2).padStart(5)}x   ${Math.round(r.msMedian).toString().padStart(7)}` +
          `     ${r.registryChunks} / ${r.peerChunks}`,
      );
    }
  } finally {
    for (const x of live) await stopFerryNode(x).catch(() => undefined);
    await registry?.stop();
    await cluster.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
