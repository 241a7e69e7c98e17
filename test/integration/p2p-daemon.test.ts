// Two `ferry daemon` nodes with [p2p] on loopback: layers mounted through the snapshots API on node A are read
// there first; node B then mounts and reads the same bytes from A, not from the registry.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import {
  BUSYBOX,
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  stopHolders,
  type BusyboxApp,
} from '../helpers/containerd.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';
import { prepareWithCriLabels } from '../helpers/cri-prepare.js';
import { diffId } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient, freePort } from '../helpers/registry.js';
import { startSnapshotsNode, type SnapshotsNode } from '../helpers/snapshots-node.js';

const run = promisify(execFile);
// Random per run: inline secrets are held to the cluster-secret rules (src/config/secret.ts).
const CLUSTER_SECRET = randomBytes(32).toString('base64');

type Node = SnapshotsNode;

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let app: BusyboxApp;
const nodes: Node[] = [];

/** Prepares both layers with CRI labels (as containerd's unpacker does); returns the FUSE mount dirs. */
async function mountLayers(n: Node, ref: string): Promise<string[]> {
  const { codes } = await prepareWithCriLabels(n.client, {
    ref,
    manifestDigest: app.pushed.manifestDigest,
    layerDigests: app.pushed.manifest.layers.map((l) => l.digest),
    diffIds: app.layers.map(diffId),
  });
  expect(codes).toEqual([status.ALREADY_EXISTS, status.ALREADY_EXISTS]);
  const mounts = await fuseMountsBelow(n.root);
  expect(mounts).toHaveLength(2);
  return mounts;
}

/** Reads every file of every mount in a child process; returns one sha256 line per file, sorted. */
async function readAll(mounts: string[]): Promise<string> {
  const { stdout } = await run(
    'sh',
    [
      '-c',
      'for m in "$@"; do (cd "$m" && find . -type f -exec sha256sum {} +); done | sort',
      'sh',
      ...mounts,
    ],
    { maxBuffer: 16 << 20 },
  );
  return stdout;
}

beforeAll(async () => {
  requireBinaries([BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  app = await pushBusyboxApp(client, `${registry.host}/p2p:1`, 'hello from a peer\n', 12 << 20);
  await ferry(['index', `${registry.host}/p2p:1`, '--push'], ferryEnv());
  const ports = [await freePort(), await freePort()];
  const peers = ports.map((p) => `"127.0.0.1:${p}"`).join(', ');
  for (const port of ports) {
    const env = ferryEnv(
      `[prefetch]\ndefaultBytesPerLayer = 0\n\n[metrics]\nenabled = false\n\n` +
        `[p2p]\nenabled = true\nlisten = "127.0.0.1:${port}"\nadvertise = "127.0.0.1:${port}"\n` +
        `peers = [${peers}]\nsecret = "${CLUSTER_SECRET}"\n`,
    );
    nodes.push(await startSnapshotsNode(env));
  }
}, 180_000);

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await stopHolders();
  await proxy?.stop();
  await client?.close();
  await registry?.stop();
});

describe('ferry daemon with peers', () => {
  it('serves a second node from the first instead of the registry, every byte verified', async () => {
    const ref = `${proxy.host}/p2p:1`;
    const [a, b] = nodes as [Node, Node];
    proxy.resetStats();
    const first = await readAll(await mountLayers(a, ref));
    const egressA = proxy.stats.blobBytes;
    expect(first).toContain('./hello.txt');
    expect(egressA).toBeGreaterThan(app.layerBytes * 0.5);

    proxy.resetStats();
    const second = await readAll(await mountLayers(b, ref));
    const egressB = proxy.stats.blobBytes;
    expect(second).toBe(first);
    console.log(`p2p daemons: node A fetched ${egressA} registry bytes, node B ${egressB}`);
    // Node B's chunks came from node A; only its index artifact (small) crossed the registry link.
    expect(egressB).toBeLessThan(egressA * 0.1);
  });
});
