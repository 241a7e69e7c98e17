// P2P across real processes and real network namespaces: four `ferry mount` nodes on a bridge, one registry
// namespace whose egress is counted at its veth. All nodes read the same working set at once; the registry
// must send it about once, not four times. Faults: a lying peer, a killed peer, a partitioned peer, churn.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IndexStore } from '../../src/index/index-store.js';
import { chunksCovering } from '../../src/image/layer-index.js';
import { ferry, requireBuild, type MountEvent } from '../helpers/ferry-cli.js';
import {
  createNetnsCluster,
  seedRegistry,
  readFiles,
  startFerryNode,
  startRegistryIn,
  stopFerryNode,
  type FerryNode,
  type NetnsCluster,
} from '../helpers/netns-cluster.js';
import { until } from '../helpers/wait.js';

const N = 4;
const FILES = 40;
const WORKING_SET = Array.from({ length: 24 }, (_, i) => `data/f${String(i).padStart(3, '0')}.bin`);

let cluster: NetnsCluster;
let registry: { stop(): Promise<void> } | undefined;
let work: string;
let ref: string;
const want = new Map<string, string>();
const running: Node[] = [];

type Node = FerryNode;

function startNode(i: number, lie = false): Node {
  const node = startFerryNode(cluster, i, { ref, peers: N, lie });
  running.push(node);
  return node;
}

async function stopNode(n: Node): Promise<MountEvent | undefined> {
  running.splice(running.indexOf(n), 1);
  return stopFerryNode(n);
}

const readAll = (n: Node): Promise<Map<string, string>> => readFiles(cluster, n, WORKING_SET);

function expectCorrect(got: Map<string, string>, files = WORKING_SET): void {
  for (const f of files) expect(got.get(f), f).toBe(want.get(f));
}

async function startCluster(liar?: number): Promise<Node[]> {
  const nodes = Array.from({ length: N }, (_, i) => startNode(i, i === liar));
  await Promise.all(nodes.map((n) => n.mounted));
  await until('every node to see every other up', () => nodes.every((n) => peersUp(n) >= N - 1), 30_000);
  return nodes;
}

/** Distinct peers node `n` has logged as up (membership probes answered). */
function peersUp(n: Node): number {
  return new Set([...n.stderr().matchAll(/p2p: peer (\S+) up/g)].map((m) => m[1])).size;
}

/** What one node alone pulls for the working set: the compressed spans of the chunks it covers. */
async function workingSetWireBytes(n: Node): Promise<number> {
  const m = await n.mounted;
  const layer = (m['layers'] as Array<{ digest: string; indexKey: string }>)[0]!;
  const store = new IndexStore({ dir: join(n.env.dir, 'state', 'indexes') });
  const index = (await store.get(layer.digest as never, layer.indexKey))!;
  const spans = new Map<string, number>(); // by chunk digest: equal chunks are fetched once
  for (const f of WORKING_SET) {
    const e = index.entries.find((x) => x.path === f)!;
    for (const c of chunksCovering(index.chunks, e.dataOffset!, e.size)) {
      const chunk = index.chunks[c]!;
      spans.set(chunk.digest, chunk.compressedEnd - chunk.compressedStart);
    }
  }
  return [...spans.values()].reduce((a, b) => a + b, 0);
}

beforeAll(async () => {
  requireBuild();
  cluster = createNetnsCluster(N);
  work = mkdtempSync(join(tmpdir(), 'ferry-p2p-'));
  const seeded = await seedRegistry(work, { files: FILES, fileBytes: 1 << 20, repo: 'p2p/test:1' });
  for (const [f, sha] of seeded.sha) want.set(f, sha);
  registry = await startRegistryIn({ dataDir: work, addr: cluster.registryAddr, ns: cluster.registryNs });
  ref = `${cluster.registryAddr}/p2p/test:1`;
}, 180_000);

/** Nodes a failed test left running: gone before the next test binds their addresses again. */
async function killRunning(): Promise<void> {
  for (const n of running.splice(0)) {
    try {
      process.kill(n.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await ferry(['umount', n.target], n.env).catch(() => undefined);
    rmSync(n.env.dir, { recursive: true, force: true });
  }
}

afterEach(killRunning);

afterAll(async () => {
  await killRunning();
  await registry?.stop();
  await cluster?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('p2p in ferry mount (4 namespace nodes)', () => {
  it('the registry sends the working set about once for the whole cluster; every byte is correct', async () => {
    const nodes = await startCluster();
    const expected = await workingSetWireBytes(nodes[0]!);
    const before = await cluster.registryTxBytes();
    const t0 = performance.now();
    const results = await Promise.all(nodes.map((n) => readAll(n)));
    const ms = performance.now() - t0;
    const egress = (await cluster.registryTxBytes()) - before;
    for (const r of results) expectCorrect(r);
    const events = await Promise.all(nodes.map(stopNode));
    const peerChunks = events.reduce(
      (a, e) => a + (e?.['served'] as { peer: { chunks: number } }).peer.chunks,
      0,
    );
    console.log(
      `p2p N=${N}: registry egress ${egress} B for a ${expected} B working set (${(egress / expected).toFixed(2)}x) in ${Math.round(ms)} ms; ${peerChunks} chunks from peers`,
    );
    expect(egress / expected).toBeLessThanOrEqual(1.3);
    expect(peerChunks).toBeGreaterThan(0);
    for (const e of events) expect((e?.['p2p'] as { badBytes: number }).badBytes).toBe(0);
  });

  it('a lying peer never gets bad bytes to a reader, and is penalised', async () => {
    const liar = 1;
    const nodes = await startCluster(liar);
    const honest = nodes.filter((n) => n.i !== liar);
    const results = await Promise.all(honest.map((n) => readAll(n)));
    for (const r of results) expectCorrect(r);
    const events = await Promise.all(nodes.map(stopNode));
    const bad = events.reduce((a, e) => a + (e?.['p2p'] as { badBytes: number }).badBytes, 0);
    expect(bad).toBeGreaterThan(0);
    const liarAddr = `${cluster.nodeAddr(liar)}:7420`;
    const penalties = events
      .filter((_, k) => k !== liar)
      .flatMap((e) => (e?.['p2p'] as { peers: Array<{ peer: string; penalties: number }> }).peers)
      .filter((p) => p.peer === liarAddr)
      .reduce((a, p) => a + p.penalties, 0);
    expect(penalties).toBeGreaterThan(0);
  });

  it('reads complete when a peer is killed mid-transfer and another is partitioned', async () => {
    await cluster.shapeRegistry(160); // ~20 MB/s: the working set takes a second or two to cross
    try {
      const nodes = await startCluster();
      const reads = [readAll(nodes[0]!), readAll(nodes[1]!)];
      await new Promise((r) => setTimeout(r, 400)); // mid-transfer: the reads have started, not finished
      process.kill(nodes[3]!.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
      await cluster.setNodeLink(2, false);
      const t0 = performance.now();
      const results = await Promise.all(reads);
      for (const r of results) expectCorrect(r);
      expect(performance.now() - t0).toBeLessThan(30_000);
      await cluster.setNodeLink(2, true);
      const events = await Promise.all(nodes.map(stopNode));
      for (const k of [0, 1]) expect(events[k]).toBeDefined();
    } finally {
      await cluster.setNodeLink(2, true);
      await cluster.shapeRegistry(0);
    }
  });

  it('churn: a node leaves and a fresh one joins; it gets the working set from peers, not the registry', async () => {
    const nodes = await startCluster();
    const expected = await workingSetWireBytes(nodes[0]!);
    const first = await Promise.all(nodes.map((n) => readAll(n)));
    for (const r of first) expectCorrect(r);
    await stopNode(nodes[3]!); // leaves
    const joined = startNode(3); // a fresh node (empty cache) at the same address
    await joined.mounted;
    await until('the new node to see its peers up', () => peersUp(joined) >= N - 2, 30_000);
    const before = await cluster.registryTxBytes();
    expectCorrect(await readAll(joined));
    const egress = (await cluster.registryTxBytes()) - before;
    expect(egress / expected).toBeLessThan(0.15);
    const ev = await stopNode(joined);
    expect((ev?.['served'] as { peer: { chunks: number } }).peer.chunks).toBeGreaterThan(0);
    await Promise.all(nodes.slice(0, 3).map(stopNode));
  });
});
