// A repository that serves wrong bytes for a layer other images share, on the containerd path. Anyone can push an
// image naming a popular layer's digests to a registry of their own; containerd reuses a committed snapshot for
// every image with its chain ID. The evil image's lazy layer, read through its repository (a proxy flipping bits
// in every Range answer), fails its reads with EIO and is withdrawn from its chain ID; the victim's pull then
// prepares a snapshot of its own and its container reads the committed bytes.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { stopHolders, tar } from '../helpers/containerd.js';
import { gzipLayer } from '../helpers/corpus.js';
import { prepareWithCriLabels } from '../helpers/cri-prepare.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { ferry, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';
import { diffId, pushImage, type PushedImage } from '../helpers/push-image.js';
import { startRegistry, testRegistryClient, type TestRegistry } from '../helpers/registry.js';
import { startSnapshotsNode, type SnapshotsNode } from '../helpers/snapshots-node.js';

const run = promisify(execFile);
const DATA = randomBytes(3 << 20);

let honest: TestRegistry;
let evilRegistry: TestRegistry;
let evilProxy: FaultProxy;
let client: RegistryClient;
let layer: Buffer;
let victim: PushedImage;
let evil: PushedImage;
let node: SnapshotsNode;

async function until(what: string, f: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}: ${node.daemon.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  requireBuild();
  honest = await startRegistry();
  evilRegistry = await startRegistry();
  evilProxy = await new FaultProxy(evilRegistry.host).start();
  client = testRegistryClient();
  layer = gzipLayer(
    await tar([
      { name: 'etc', type: 'directory' },
      { name: 'etc/greeting', data: Buffer.from('hello from the victim\n') },
      { name: 'data.bin', data: DATA },
    ]),
  );
  const layers = [{ data: layer, mediaType: MediaType.ociLayerGzip }];
  victim = await pushImage(client, `${honest.host}/victim/app:1`, { layers });
  evil = await pushImage(client, `${evilProxy.host}/evil/app:1`, {
    layers,
    config: { config: { Labels: { evil: 'yes' } } },
  });
  // The evil image's index, bound to it (so the daemon does not stream the layer to build one: its reads go
  // through the repository), published while its registry still answers honestly.
  await ferry(['index', `${evilProxy.host}/evil/app:1`, '--push', '--bind', 'ferry'], ferryEnv());
  evilProxy.inject('range', { type: 'flip' });
  node = await startSnapshotsNode(
    ferryEnv(
      '[prefetch]\nenabled = false\n\n[readAhead]\nenabled = false\n\n[snapshotter]\nauditLazyLayers = "off"\n',
    ),
  );
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await stopHolders();
  await evilProxy?.stop();
  await client?.close();
  await evilRegistry?.stop();
  await honest?.stop();
});

/** Reads `path` of a container rootfs on `parent` (an overlay mounted the way runc would). */
async function readInContainer(parent: string, key: string, path: string): Promise<Buffer> {
  const r = await node.client.call<{ mounts: Array<{ type: string; options: string[] }> }>('Prepare', {
    key,
    parent,
  });
  const target = mkdtempSync(join(tmpdir(), 'ferry-rootfs-'));
  await run('mount', ['-t', 'overlay', 'overlay', '-o', r.mounts[0]!.options.join(','), target]);
  try {
    return await readFile(join(target, path));
  } finally {
    await run('umount', [target]);
    rmSync(target, { recursive: true, force: true });
    await node.client.call('Remove', { key });
  }
}

describe('a repository serving wrong bytes for a shared layer', () => {
  it("fails only its own image's reads, and its snapshot leaves the chain ID for the victim's", async () => {
    const diffIds = [diffId({ data: layer, mediaType: MediaType.ociLayerGzip })];
    const layerDigests = evil.manifest.layers.map((l) => l.digest);
    const evilRun = await prepareWithCriLabels(node.client, {
      ref: `${evilProxy.host}/evil/app:ferry`,
      manifestDigest: evil.manifestDigest,
      layerDigests,
      diffIds,
    });
    expect(evilRun.codes).toEqual([status.ALREADY_EXISTS]);
    const chain = evilRun.chainIds[0]!;
    await expect(readInContainer(chain, 'evil-rootfs', 'data.bin')).rejects.toMatchObject({ code: 'EIO' });
    expect(evilProxy.stats.faulted).toBeGreaterThan(0);
    await until('the evil snapshot to leave its chain ID', async () => {
      const names = (await node.client.list([])).flat().map((s) => String(s['name']));
      return (
        !names.includes(chain) && names.some((n) => n.startsWith('ferry-quarantined/') && n.endsWith(chain))
      );
    });
    expect(node.daemon.stderr()).toContain('"remote snapshot failed: bytes"');

    // The victim's pull finds no snapshot under the chain ID and prepares its own, read from its repository.
    const victimRun = await prepareWithCriLabels(node.client, {
      ref: `${honest.host}/victim/app:1`,
      manifestDigest: victim.manifestDigest,
      layerDigests: victim.manifest.layers.map((l) => l.digest),
      diffIds,
    });
    expect(victimRun.codes).toEqual([status.ALREADY_EXISTS]);
    expect((await readInContainer(chain, 'victim-rootfs', 'data.bin')).equals(DATA)).toBe(true);
    expect((await readInContainer(chain, 'victim-rootfs-2', 'etc/greeting')).toString()).toBe(
      'hello from the victim\n',
    );
  });
});
