// Content trust on the containerd path, over the real snapshots API: containerd reuses a committed snapshot for
// every image with its chain ID, so a layer served from a published index is audited against its diffID in the
// background. An image that binds a forged index to the victim's layers gets its snapshots withdrawn from their
// chain IDs once the audit fails; the victim's image then mounts with an index built from its own layers.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { parseReference } from '../../src/image/reference.js';
import { publishBoundIndex, publishIndexes } from '../../src/index/publish.js';
import type { RegistryClient } from '../../src/registry/client.js';
import type { SnapshotsClient } from '../api/grpc-client.js';
import { fuseMountsBelow, stopHolders, type RunningFerryDaemon } from '../helpers/containerd.js';
import { prepareWithCriLabels } from '../helpers/cri-prepare.js';
import { ferry, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';
import { diffId, pushImage, type PushedImage } from '../helpers/push-image.js';
import { startRegistry, testRegistryClient, type TestRegistry } from '../helpers/registry.js';
import { startSnapshotsNode, type SnapshotsNode } from '../helpers/snapshots-node.js';
import { forgeTop, HONEST, publishedIndexes, victimLayers } from '../helpers/trust-fixture.js';

let registry: TestRegistry;
let client: RegistryClient;
let work: string;
let layers: Buffer[];
let victim: PushedImage;
let evil: PushedImage;
let node: SnapshotsNode;
let daemon: RunningFerryDaemon;
let c: SnapshotsClient;
const run = promisify(execFile);

async function until(what: string, f: () => boolean, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${daemon.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  requireBuild();
  work = mkdtempSync(join(tmpdir(), 'ferry-trust-daemon-'));
  registry = await startRegistry();
  client = testRegistryClient();
  layers = victimLayers(work);
  const asLayers = layers.map((data) => ({ data, mediaType: MediaType.ociLayerGzip }));
  victim = await pushImage(client, `${registry.host}/victim/app:1`, { layers: asLayers });
  // The attacker's image: the victim's layers (so the victim's diffIDs and chain IDs), another config, and a
  // forged index bound to it in a Ferry-enabled image index.
  evil = await pushImage(client, `${registry.host}/evil/app:1`, {
    layers: asLayers,
    config: { config: { Labels: { evil: 'yes' } } },
  });
  const { stdout } = await ferry(['index', `${registry.host}/victim/app:1`, '--push', '--json'], ferryEnv());
  const victimImage = await client.resolve(parseReference(`${registry.host}/victim/app:1`));
  const [base, top] = await publishedIndexes(
    client,
    victimImage,
    (JSON.parse(stdout) as { artifact: string }).artifact,
  );
  const evilImage = await client.resolve(parseReference(`${registry.host}/evil/app:1`));
  await publishBoundIndex(
    client,
    evilImage,
    await publishIndexes(client, evilImage, [base, forgeTop(top)]),
    'ferry',
  );
  const env = ferryEnv('[prefetch]\nenabled = false\n\n[snapshotter]\nauditDelayMs = 0\n', '', []);
  node = await startSnapshotsNode(env);
  ({ daemon, client: c } = node);
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await stopHolders();
  await client?.close();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Mounts an active snapshot on `parent` with overlayfs and reports what a container would see. */
async function look(parent: string, key: string) {
  const r = await c.call<{ mounts: Array<{ type: string; options: string[] }> }>('Prepare', { key, parent });
  const target = mkdtempSync(join(tmpdir(), 'ferry-rootfs-'));
  await run('mount', ['-t', 'overlay', 'overlay', '-o', r.mounts[0]!.options.join(','), target]);
  try {
    const exists = (p: string) =>
      stat(join(target, p)).then(
        () => true,
        () => false,
      );
    return {
      runMode: (await stat(join(target, 'bin/run.sh'))).mode & 0o7777,
      data: await readFile(join(target, 'etc/data'), 'utf8'),
      zero: await exists('bin/zero'),
      baseConf: await exists('etc/base.conf'),
    };
  } finally {
    await run('umount', [target]);
    rmSync(target, { recursive: true, force: true });
    await c.call('Remove', { key });
  }
}

describe('layers served from a published index on the containerd path', () => {
  it('are withdrawn from their chain IDs when the audit finds the index lies, and the victim is served honestly', async () => {
    const diffIds = layers.map((data) => diffId({ data, mediaType: MediaType.ociLayerGzip }));
    const evilRun = await prepareWithCriLabels(c, {
      ref: `${registry.host}/evil/app:ferry`,
      manifestDigest: evil.manifestDigest,
      layerDigests: evil.manifest.layers.map((l) => l.digest),
      diffIds,
    });
    expect(evilRun.codes).toEqual([status.ALREADY_EXISTS, status.ALREADY_EXISTS]);
    await until('the forged layer to fail its audit', () =>
      daemon.stderr().includes('"remote snapshot failed its audit"'),
    );
    await until('the honest layer to pass its audit', () => daemon.stderr().includes('"lazy layer audited'));
    const names = (await c.list([])).flat().map((s) => String(s['name']));
    expect(names).not.toContain(evilRun.chainIds[1]);
    expect(names.some((n) => n.startsWith('ferry-quarantined/') && n.endsWith(evilRun.chainIds[1]!))).toBe(
      true,
    );
    // The base layer's index was honest: its snapshot keeps its name.
    expect(names).toContain(evilRun.chainIds[0]);

    // The victim's pull finds the base chain and prepares the top layer anew, with an index of its own.
    const victimRun = await prepareWithCriLabels(c, {
      ref: `${registry.host}/victim/app:1`,
      manifestDigest: victim.manifestDigest,
      layerDigests: victim.manifest.layers.map((l) => l.digest),
      diffIds,
    });
    expect(victimRun.codes[1]).toBe(status.ALREADY_EXISTS);
    expect(await look(victimRun.chainIds[1]!, 'victim-rootfs')).toMatchObject(HONEST);
    expect((await fuseMountsBelow(daemon.root)).length).toBeGreaterThanOrEqual(2);
  });
});
