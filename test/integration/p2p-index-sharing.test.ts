// Index sharing across real processes and network namespaces: four `ferry mount` nodes start an image that has no
// published index. The layer's owner (rendezvous on the layer digest) streams the layer once and
// builds its index; the other three get the index from it. The registry sends the blob about once, not four
// times, and every node reads the right bytes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuild } from '../helpers/ferry-cli.js';
import {
  createNetnsCluster,
  readFiles,
  seedRegistry,
  startFerryNode,
  startRegistryIn,
  stopFerryNode,
  type FerryNode,
  type NetnsCluster,
} from '../helpers/netns-cluster.js';

const N = 4;
let cluster: NetnsCluster;
let registry: { stop(): Promise<void> } | undefined;
let work: string;
let seeded: { files: string[]; sha: Map<string, string>; layerBytes: number };
const nodes: FerryNode[] = [];

beforeAll(async () => {
  requireBuild();
  cluster = createNetnsCluster(N);
  work = mkdtempSync(join(tmpdir(), 'ferry-p2p-index-'));
  seeded = await seedRegistry(work, {
    files: 12,
    fileBytes: 2 << 20,
    repo: 'shared/index:1',
    publish: false,
  });
  registry = await startRegistryIn({ dataDir: work, addr: cluster.registryAddr, ns: cluster.registryNs });
}, 180_000);

afterAll(async () => {
  for (const n of nodes) await stopFerryNode(n).catch(() => undefined);
  await registry?.stop();
  await cluster?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('index sharing (4 namespace nodes, no published index)', () => {
  it('the layer owner builds the index once and the others mount from it', async () => {
    const ref = `${cluster.registryAddr}/shared/index:1`;
    const before = await cluster.registryTxBytes();
    for (let i = 0; i < N; i++) nodes.push(startFerryNode(cluster, i, { ref, peers: N }));
    const mounted = await Promise.all(nodes.map((n) => n.mounted));
    const egress = (await cluster.registryTxBytes()) - before;
    const trust = mounted.map((m) => (m['layers'] as Array<{ trust: string }>)[0]!.trust);
    console.log(
      `index sharing: registry sent ${egress} B for a ${seeded.layerBytes} B layer to mount ${N} nodes ` +
        `(${(egress / seeded.layerBytes).toFixed(2)}x); trust: ${trust.join(' | ')}`,
    );
    expect(trust.filter((t) => t === 'built')).toHaveLength(1);
    expect(trust.filter((t) => t.startsWith('built by peer '))).toHaveLength(N - 1);
    expect(egress / seeded.layerBytes).toBeLessThan(1.5);
    const files = seeded.files.slice(0, 4);
    for (const n of nodes) {
      const got = await readFiles(cluster, n, files);
      for (const f of files) expect(got.get(f), `node ${n.i} ${f}`).toBe(seeded.sha.get(f));
    }
  });
});
