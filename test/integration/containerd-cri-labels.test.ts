// The CRI label set (what containerd's CRI plugin sends with disable_snapshot_annotations=false), hand-made and
// driven over the snapshots API as containerd's unpacker would: each layer is mounted lazily through FUSE, an
// active snapshot on top overlays the FUSE dirs and reads correct bytes; a bad layer label falls back to
// ordinary; a lying chain ID is refused. containerd's own CRI plugin sending them: cri-path.test.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { RegistryClient } from '../../src/registry/client.js';
import type { SnapshotsClient } from '../api/grpc-client.js';
import {
  BUSYBOX,
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  stopHolders,
  type BusyboxApp,
  type RunningFerryDaemon,
} from '../helpers/containerd.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';
import { diffId } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { startSnapshotsNode, type SnapshotsNode } from '../helpers/snapshots-node.js';

const run = promisify(execFile);
const CRI = 'containerd.io/snapshot/cri.';

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let app: BusyboxApp;
let node: SnapshotsNode;
let daemon: RunningFerryDaemon;
let root: string;
let c: SnapshotsClient;

beforeAll(async () => {
  requireBinaries([BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  app = await pushBusyboxApp(client, `${registry.host}/cri:1`, 'hello over CRI labels\n', 16 << 20);
  await ferry(['index', `${registry.host}/cri:1`, '--push'], ferryEnv());
  // This test counts demand-fetched bytes: no mount-time default prefetch (prefetch wiring, src/prefetch/).
  const env = ferryEnv('[prefetch]\ndefaultBytesPerLayer = 0\n');
  node = await startSnapshotsNode(env);
  ({ daemon, client: c, root } = node);
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await stopHolders();
  await proxy?.stop();
  await client?.close();
  await registry?.stop();
});

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e as { code: number }).code,
  );

describe('CRI labels over the snapshots API', () => {
  it('mounts every layer lazily, and an active snapshot on top reads the right bytes', async () => {
    const ref = `${proxy.host}/cri:1`;
    const digests = app.pushed.manifest.layers.map((l) => l.digest);
    const diffs = app.layers.map(diffId);
    const chain0 = diffs[0]!;
    const chain1 = sha256(Buffer.from(`${chain0} ${diffs[1]!}`));
    proxy.resetStats();
    for (const [i, target] of [chain0, chain1].entries()) {
      const labels = {
        'containerd.io/snapshot.ref': target,
        [`${CRI}image-ref`]: ref,
        [`${CRI}manifest-digest`]: app.pushed.manifestDigest,
        [`${CRI}layer-digest`]: digests[i]!,
        [`${CRI}image-layers`]: digests.slice(i).join(','),
      };
      const parent = i === 0 ? '' : chain0;
      expect(await codeOf(c.call('Prepare', { key: `k8s.io/${i}/extract ${target}`, parent, labels }))).toBe(
        status.ALREADY_EXISTS,
      );
      const found = (
        await c.list([`labels."containerd.io/snapshot.ref"==${target},parent=="${parent}"`])
      ).flat();
      expect(found.map((f) => [f['name'], f['kind']])).toEqual([[target, 'COMMITTED']]);
    }
    const fuse = await fuseMountsBelow(root);
    expect(fuse).toHaveLength(2);

    const rootfs = await c.call<{ mounts: Array<{ type: string; options: string[] }> }>('Prepare', {
      key: 'k8s.io/2/ctr',
      parent: chain1,
    });
    const [m] = rootfs.mounts;
    expect(m?.type).toBe('overlay');
    const lower = m!.options
      .find((o) => o.startsWith('lowerdir='))!
      .slice('lowerdir='.length)
      .split(':');
    expect([...lower].sort()).toEqual([...fuse].sort());
    const target = mkdtempSync(join(tmpdir(), 'ferry-rootfs-'));
    await run('mount', ['-t', 'overlay', 'overlay', '-o', m!.options.join(','), target]);
    try {
      // Through sh: spawn blocks this process until exec, and exec reads busybox through FUSE from chunks this
      // process's proxy serves.
      const { stdout } = await run('sh', ['-c', `"${target}/bin/busybox" cat "${target}/hello.txt"`]);
      expect(stdout).toBe('hello over CRI labels\n');
    } finally {
      await run('umount', [target]);
    }
    console.log(`cri labels: ${proxy.stats.blobBytes} of ${app.layerBytes} layer bytes fetched`);
    expect(proxy.stats.blobBytes).toBeLessThan(app.layerBytes * 0.3);

    // Remove (containerd's GC order: children first) unmounts the layers.
    await c.call('Remove', { key: 'k8s.io/2/ctr' });
    expect(await codeOf(c.call('Remove', { key: chain0 }))).toBe(status.FAILED_PRECONDITION);
    await c.call('Remove', { key: chain1 });
    await c.call('Remove', { key: chain0 });
    expect(await fuseMountsBelow(root)).toEqual([]);
  });

  it('falls back to an ordinary snapshot (and logs why) when the layer cannot be found', async () => {
    const labels = {
      'containerd.io/snapshot.ref': 'sha256:fallback',
      [`${CRI}image-ref`]: `${proxy.host}/cri:1`,
      [`${CRI}layer-digest`]: `sha256:${'9'.repeat(64)}`,
    };
    const r = await c.call<{ mounts: Array<{ type: string; options: string[] }> }>('Prepare', {
      key: 'k8s.io/3/extract x',
      parent: '',
      labels,
    });
    expect(r.mounts[0]).toMatchObject({ type: 'bind', options: ['rw', 'rbind'] });
    expect(await fuseMountsBelow(root)).toEqual([]);
    expect(daemon.stderr()).toMatch(/"remote snapshot not prepared; falling back to ordinary"/);
  });

  it('never commits a lazy layer under a chain ID the image config does not give it', async () => {
    // A client that names another chain (as a config lying about diffIDs would make containerd do) gets an
    // ordinary snapshot to unpack into: containerd would reuse a committed one for any image with that chain.
    const digests = app.pushed.manifest.layers.map((l) => l.digest);
    const other = sha256('not this layer');
    const labels = {
      'containerd.io/snapshot.ref': other,
      [`${CRI}image-ref`]: `${proxy.host}/cri:1`,
      [`${CRI}manifest-digest`]: app.pushed.manifestDigest,
      [`${CRI}layer-digest`]: digests[0]!,
      [`${CRI}image-layers`]: digests.join(','),
    };
    const r = await c.call<{ mounts: Array<{ type: string }> }>('Prepare', {
      key: 'k8s.io/4/extract y',
      parent: '',
      labels,
    });
    expect(r.mounts[0]).toMatchObject({ type: 'bind' });
    expect(await fuseMountsBelow(root)).toEqual([]);
    expect(daemon.stderr()).toMatch(/config's diffIDs make its chain ID/);
    await c.call('Remove', { key: 'k8s.io/4/extract y' });
  });
});
