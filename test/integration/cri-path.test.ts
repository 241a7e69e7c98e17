// The real CRI path: Debian's containerd with its CRI plugin, Ferry as the CRI snapshotter and
// disable_snapshot_annotations = false, driven over the CRI API as a kubelet would. PullImage is lazy through
// Ferry, Ferry's Prepare gets the cri.* labels containerd really sends, and a host-network pod runs the image.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../../src/image/digest.js';
import { RegistryClient } from '../../src/registry/client.js';
import {
  CRI_IMAGE_LAYERS,
  CRI_IMAGE_REF,
  CRI_LAYER_DIGEST,
  CRI_MANIFEST_DIGEST,
} from '../../src/snapshot/remote-labels.js';
import { LABEL_REMOTE, LABEL_TARGET_REF } from '../../src/snapshot/types.js';
import { criClient, type CriClient } from '../api/cri-client.js';
import type { SnapshotsClient } from '../api/grpc-client.js';
import {
  BUSYBOX,
  fuseMountsBelow,
  pushBusyboxApp,
  pushPauseImage,
  requireBinaries,
  startContainerd,
  stopHolders,
  type BusyboxApp,
  type RunningFerryDaemon,
  type TestContainerd,
} from '../helpers/containerd.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';
import { diffId } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { startSnapshotsNode, type SnapshotsNode } from '../helpers/snapshots-node.js';

const GREETING = 'hello through the CRI\n';

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let app: BusyboxApp;
let node: SnapshotsNode;
let daemon: RunningFerryDaemon;
let root: string;
let ctd: TestContainerd;
let cri: CriClient;
let snapshots: SnapshotsClient;

beforeAll(async () => {
  requireBinaries([BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  app = await pushBusyboxApp(client, `${registry.host}/cri-app:1`, GREETING, 16 << 20);
  await pushPauseImage(client, `${registry.host}/pause:1`);
  await ferry(['index', `${registry.host}/cri-app:1`, '--push'], ferryEnv());
  // Counts demand-fetched bytes: no mount-time default prefetch (prefetch wiring, src/prefetch/).
  const env = ferryEnv('[prefetch]\ndefaultBytesPerLayer = 0\n');
  node = await startSnapshotsNode(env);
  ({ daemon, client: snapshots, root } = node);
  ctd = await startContainerd({
    snapshotterSocket: node.socketPath,
    // The pause image comes straight from the registry: the proxy counts the app image's bytes only.
    cri: { sandboxImage: `${registry.host}/pause:1`, plainHttpRegistries: [proxy.host, registry.host] },
  });
  cri = await criClient(ctd.address);
}, 120_000);

afterAll(async () => {
  // A failed test may leave its pod: remove what CRI still lists before containerd goes.
  const pods = await cri
    ?.runtime<{ items: Array<{ id: string }> }>('ListPodSandbox', {})
    .catch(() => ({ items: [] }));
  for (const { id } of pods?.items ?? []) {
    await cri.runtime('StopPodSandbox', { pod_sandbox_id: id }).catch(() => undefined);
    await cri.runtime('RemovePodSandbox', { pod_sandbox_id: id }).catch(() => undefined);
  }
  cri?.close();
  await ctd?.stop();
  await node?.stop();
  await stopHolders();
  await proxy?.stop();
  await client?.close();
  await registry?.stop();
});

/** The chain ID of each layer (the snapshot name containerd asks Ferry to commit), bottom first. */
function chainIds(): Digest[] {
  const ids: Digest[] = [];
  for (const d of app.layers.map(diffId)) {
    const parent = ids.at(-1);
    ids.push(parent === undefined ? d : sha256(`${parent} ${d}`));
  }
  return ids;
}

const hostNetwork = { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } };

describe('the CRI path: containerd CRI plugin with Ferry as its snapshotter', () => {
  const ref = () => `${proxy.host}/cri-app:1`;

  it('PullImage mounts the layers lazily, and Prepare carries the cri.* labels', async () => {
    proxy.resetStats();
    const t0 = performance.now();
    const pulled = await cri.image<{ image_ref: string }>('PullImage', { image: { image: ref() } }, 60_000);
    const pullMs = performance.now() - t0;
    expect(pulled.image_ref).toBe(app.pushed.configDigest);
    expect(await fuseMountsBelow(root), daemon.stderr().slice(-8000)).toHaveLength(2);

    // Ferry keeps the labels of the Prepare that mounted a layer on the snapshot it commits: read them back
    // over its own snapshots socket.
    const layers = app.pushed.manifest.layers.map((l) => l.digest);
    for (const [i, chain] of chainIds().entries()) {
      const { info } = await snapshots.call<{ info: { kind: string; labels: Record<string, string> } }>(
        'Stat',
        { key: chain },
      );
      console.log(`cri: Prepare labels of layer ${i}: ${Object.keys(info.labels).sort().join(', ')}`);
      expect(info.kind).toBe('COMMITTED');
      expect(info.labels).toMatchObject({
        [LABEL_TARGET_REF]: chain,
        [CRI_IMAGE_REF]: ref(),
        [CRI_MANIFEST_DIGEST]: app.pushed.manifestDigest,
        [CRI_LAYER_DIGEST]: layers[i],
        [CRI_IMAGE_LAYERS]: layers.slice(i).join(','),
        [LABEL_REMOTE]: expect.any(String) as unknown,
      });
    }
    const prepared = daemon
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"remote snapshot prepared"') && l.includes(ref()));
    expect(prepared).toHaveLength(2);
    console.log(
      `cri: PullImage ${Math.round(pullMs)} ms, ${proxy.stats.blobBytes} of ${app.layerBytes} layer bytes fetched`,
    );
    expect(proxy.stats.blobBytes).toBeLessThan(app.layerBytes * 0.3);
  });

  it('a host-network pod runs a container from the lazily pulled image', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'ferry-pod-logs-'));
    const sandboxConfig = {
      metadata: { name: 'ferry-cri', uid: 'ferry-cri-uid', namespace: 'default', attempt: 0 },
      log_directory: logDir, // no hostname: a host-network pod has the node's (runc refuses one without its own UTS)
      linux: { security_context: hostNetwork },
    };
    const t0 = performance.now();
    const { pod_sandbox_id } = await cri.runtime<{ pod_sandbox_id: string }>(
      'RunPodSandbox',
      { config: sandboxConfig },
      60_000,
    );
    const { container_id } = await cri.runtime<{ container_id: string }>('CreateContainer', {
      pod_sandbox_id,
      config: {
        metadata: { name: 'reader', attempt: 0 },
        image: { image: ref() },
        command: ['/bin/busybox', 'cat', '/hello.txt'],
        log_path: 'reader.log',
        linux: { security_context: hostNetwork },
      },
      sandbox_config: sandboxConfig,
    });
    // The container's rootfs is a Ferry snapshot on the lazily mounted layers, and so is the sandbox's.
    const active = (await snapshots.list([`parent=="${chainIds().at(-1)!}"`])).flat();
    expect(active.map((i) => [i['kind'], String(i['name']).includes(container_id)])).toEqual([
      ['ACTIVE', true],
    ]);
    expect(daemon.stderr()).toMatch(
      new RegExp(`"image":"${registry.host}/pause:1".*"remote snapshot prepared"`),
    );
    await cri.runtime('StartContainer', { container_id });
    let state: { state: string; exit_code: number } | undefined;
    const deadline = Date.now() + 30_000;
    for (;;) {
      ({ status: state } = await cri.runtime<{ status: { state: string; exit_code: number } }>(
        'ContainerStatus',
        { container_id },
      ));
      if (state.state === 'CONTAINER_EXITED' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(
      `cri: pod + container ran in ${Math.round(performance.now() - t0)} ms, ` +
        `${proxy.stats.blobBytes} of ${app.layerBytes} layer bytes fetched after the run`,
    );
    expect(state).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 0 });
    // CRI's log format: `<time> stdout F <line>`.
    const log = readFileSync(join(logDir, 'reader.log'), 'utf8');
    expect(log).toMatch(new RegExp(`^\\S+ stdout F ${GREETING.trim()}$`, 'm'));
    expect(proxy.stats.blobBytes).toBeLessThan(app.layerBytes * 0.3);

    await cri.runtime('RemoveContainer', { container_id });
    await cri.runtime('StopPodSandbox', { pod_sandbox_id });
    await cri.runtime('RemovePodSandbox', { pod_sandbox_id });
    const left = await cri.runtime<{ items: unknown[] }>('ListPodSandbox', {});
    expect(left.items).toEqual([]);
  });
});
