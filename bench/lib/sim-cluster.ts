// One simulation run: N nodes (sim-node.ts) read the same working set at once on a simulated clock and network,
// optionally with churn (nodes replaced by fresh ones during the run). Returns registry egress and the
// time-to-working-set distribution over the nodes present at the end.
import { silentLogger } from '../../src/log.js';
import { sha256 } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { SimClock } from './sim-clock.js';
import { Link, SimNetwork } from './sim-network.js';
import { SimNode, type SimParams, type SimWorld } from './sim-node.js';

export interface ScenarioOptions extends SimParams {
  nodes: number;
  /** Fraction of nodes replaced during the run (each leaves; a fresh node with an empty cache joins). */
  churnFraction: number;
  /** Departures happen at uniformly random times in [0, churnWindowMs). */
  churnWindowMs: number;
  seed: number;
  /** Give up (report incomplete nodes) at this simulated time. */
  limitMs: number;
}

export interface ScenarioResult {
  nodes: number;
  chunks: number;
  /** Bytes the registry sent, in working-set units (1.0 = each chunk once). */
  egress: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  completed: number;
  present: number;
  replaced: number;
  registryChunks: number;
  peerChunks: number;
  hedges: number;
  peerFailures: number;
  readErrors: number;
  events: number;
  cpuMs: number;
}

/** bench/p2p.ts's setting: 200 Mbit/s registry link, fast veth node links, Ferry's default p2p options. */
export const DEFAULT_SCENARIO: ScenarioOptions = {
  nodes: 8,
  chunks: 200,
  chunkBytes: 1 << 20,
  registryMbit: 200,
  nodeMbit: 10_000,
  latencyMs: 0.1,
  readers: 8,
  fetchConcurrency: 8,
  ownerCount: 2,
  hedgeAfterMs: 150,
  peerTimeoutMs: 10_000,
  deadTimeoutMs: 1300,
  probeIntervalMs: 1000,
  probeTimeoutMs: 300,
  cpuMsPerMiB: 0,
  hostCores: 2,
  churnFraction: 0,
  churnWindowMs: 0,
  seed: 1,
  limitMs: 30 * 60_000,
};

export const nodeId = (k: number): string => `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}:7420`;

/** mulberry32: a small seeded PRNG so runs are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function simIndex(payload: readonly Buffer[]): LayerIndex {
  const chunks = payload.map((c, i) => ({
    digest: sha256(c),
    offset: i * c.length,
    size: c.length,
    compressedStart: i * c.length,
    compressedEnd: (i + 1) * c.length,
    checkpoint: -1,
    skip: 0,
  }));
  return {
    version: 1,
    layerDigest: sha256(Buffer.concat(payload)),
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    format: 'tar',
    codec: 'identity',
    compressedSize: 0,
    uncompressedSize: 0,
    entries: [],
    chunks,
    checkpoints: [],
    windows: [],
    build: { tool: 'p2p-sim', createdAt: '', durationMs: 0 },
  };
}

const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;

export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  const cpu0 = process.cpuUsage();
  const clock = new SimClock();
  const random = rng(o.seed);
  // The real code hashes these few bytes; the network carries o.chunkBytes for each of them.
  const payload = Array.from({ length: o.chunks }, (_, i) => Buffer.from(`ferry-sim-chunk-${o.seed}-${i}`));
  const world: SimWorld = {
    clock,
    net: new SimNetwork({ clock, latencyMs: o.latencyMs }),
    registryUp: new Link(o.registryMbit),
    index: simIndex(payload),
    payload,
    params: o,
    nodes: new Map(),
    log: silentLogger(),
    // A FIFO server doing `hostCores` MiB per cpuMsPerMiB ms: MiB/ms → Mbit/s for Link.
    hostCpu: new Link(o.cpuMsPerMiB > 0 ? ((o.hostCores / o.cpuMsPerMiB) * 2 ** 20 * 8 * 1000) / 1e6 : 1),
  };
  const ids = Array.from({ length: o.nodes }, (_, k) => nodeId(k));
  let pending = 0;
  const start = (node: SimNode): void => {
    pending++;
    void node.readWorkingSet().finally(() => pending--);
  };
  // Every node exists before any reads: the first requests must find their peers alive.
  for (const id of ids) world.nodes.set(id, new SimNode(world, id, ids));
  for (const node of [...world.nodes.values()]) start(node);

  const replacements = o.nodes >= 2 ? Math.max(1, Math.round(o.churnFraction * o.nodes)) : 0;
  let churnLeft = o.churnFraction > 0 ? replacements : 0;
  let nextId = o.nodes;
  for (let k = 0; k < churnLeft; k++) {
    clock.at(random() * o.churnWindowMs, () => {
      churnLeft--;
      const alive = [...world.nodes.values()].filter((n) => n.alive);
      const gone = alive[Math.floor(random() * alive.length)]!;
      // Peers find out at their next probe of it (or at once, when a request to it fails).
      const detectAt = new Map<string, number>();
      for (const n of alive) {
        if (n === gone) continue;
        const at = clock.now() + random() * o.probeIntervalMs + o.probeTimeoutMs;
        detectAt.set(n.id, at);
        clock.at(at, () => n.view.learnLeave(gone.id));
      }
      gone.depart(detectAt);
      const fresh = new SimNode(
        world,
        nodeId(nextId++),
        alive.filter((n) => n !== gone).map((n) => n.id),
      );
      // Discovery (a watched peers file, DNS) and a first probe bring it into the others' views.
      for (const n of alive) {
        if (n !== gone)
          clock.after(random() * o.probeIntervalMs + o.latencyMs, () => n.view.learnJoin(fresh.id));
      }
      world.nodes.set(fresh.id, fresh);
      start(fresh);
    });
  }

  await clock.run(() => pending === 0 && churnLeft === 0, o.limitMs);

  const present = [...world.nodes.values()].filter((n) => n.alive);
  const times = present
    .flatMap((n) => (n.doneAt === undefined ? [] : [n.doneAt - n.startedAt]))
    .sort((a, b) => a - b);
  let registryChunks = 0;
  let peerChunks = 0;
  let hedges = 0;
  let peerFailures = 0;
  let readErrors = 0;
  for (const n of world.nodes.values()) {
    const s = n.peerFirst.stats();
    registryChunks += s.registry.chunks;
    peerChunks += s.peer.chunks;
    hedges += s.hedges;
    peerFailures += s.peerFailures;
    readErrors += n.readErrors;
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    nodes: o.nodes,
    chunks: o.chunks,
    egress: world.registryUp.sentBytes / (o.chunks * o.chunkBytes),
    p50Ms: percentile(times, 0.5),
    p99Ms: percentile(times, 0.99),
    maxMs: times[times.length - 1] ?? NaN,
    completed: times.length,
    present: present.length,
    replaced: o.churnFraction > 0 ? replacements : 0,
    registryChunks,
    peerChunks,
    hedges,
    peerFailures,
    readErrors,
    events: clock.fired,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}
