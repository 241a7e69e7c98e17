// Content trust against a real registry and real mounts, tried as an attacker with push access would: a forged
// index artifact (setuid, owner, capability xattr, device node, whiteout, a file remapped to other bytes) pushed as
// the newest referrer of a digest-pinned image is ignored unless signed by a key the node trusts; another image
// sharing the victim's layers cannot plant its index for them; a config whose diffIDs lie fails the mount.
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { MediaType } from '../../src/image/manifest.js';
import { parseReference } from '../../src/image/reference.js';
import { publishBoundIndex, publishIndexes, signArtifact } from '../../src/index/publish.js';
import { loadSigningKey } from '../../src/index/signature.js';
import type { RegistryClient, ResolvedImage } from '../../src/registry/client.js';
import { ferry, ferryEnv, startMount, type FerryEnv, type RunningMount } from '../helpers/ferry-cli.js';
import { pushImage, type PushedImage } from '../helpers/push-image.js';
import { startRegistry, testRegistryClient, type TestRegistry } from '../helpers/registry.js';
import { keyPair } from '../helpers/signing-key.js';
import { forgeTop, HONEST, publishedIndexes, victimLayers } from '../helpers/trust-fixture.js';

let registry: TestRegistry;
let client: RegistryClient;
let work: string;
let victim: PushedImage;
let victimRef: string;
let layers: Buffer[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ferry-trust-'));
  registry = await startRegistry();
  client = testRegistryClient();
  layers = victimLayers(work);
  victimRef = `${registry.host}/victim/app:1`;
  victim = await pushImage(client, victimRef, {
    layers: layers.map((data) => ({ data, mediaType: MediaType.ociLayerGzip })),
  });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

const pinned = (): string => `${registry.host}/victim/app@${victim.manifestDigest}`;

async function resolved(ref: string): Promise<ResolvedImage> {
  return client.resolve(parseReference(ref));
}

/** Pushes `index` (with the honest base layer's) as a new referrer artifact of `image`; optionally signed. */
async function pushForged(
  image: ResolvedImage,
  base: LayerIndex,
  top: LayerIndex,
  signWith?: string,
): Promise<string> {
  await new Promise((r) => setTimeout(r, 1100)); // a strictly newer `created` than the publisher's artifact
  const art = await publishIndexes(client, image, [base, top]);
  if (signWith !== undefined) await signArtifact(client, image, art.digest, await loadSigningKey(signWith));
  return art.digest;
}

interface Seen {
  runMode: number;
  runUid: number;
  data: string;
  zero: boolean;
  baseConf: boolean;
  trust: string[];
}

/** Mounts `ref` on the node `env` (removed afterwards unless `keep`) and reports what a container would see. */
async function look(ref: string, env: FerryEnv, o: { keep?: boolean } = {}): Promise<Seen> {
  const target = join(env.dir, 'rootfs');
  const m: RunningMount = await startMount(ref, target, env);
  try {
    const run = await stat(join(target, 'bin/run.sh'));
    const exists = (p: string) =>
      stat(join(target, p)).then(
        () => true,
        () => false,
      );
    return {
      runMode: run.mode & 0o7777,
      runUid: run.uid,
      data: await readFile(join(target, 'etc/data'), 'utf8'),
      zero: await exists('bin/zero'),
      baseConf: await exists('etc/base.conf'),
      trust: (m.mounted['layers'] as Array<{ trust: string }>).map((l) => l.trust),
    };
  } finally {
    await ferry(['umount', target], env);
    await m.exited;
    if (o.keep !== true) rmSync(env.dir, { recursive: true, force: true });
  }
}

const quietNode = (keys: string[]) => ferryEnv('[prefetch]\nenabled = false\n', '', keys);

describe('published index artifacts', () => {
  let image: ResolvedImage;
  let base: LayerIndex;
  let top: LayerIndex;

  beforeAll(async () => {
    // The publisher signs with the key every node trusts (keyPair('default')).
    const { stdout } = await ferry(['index', victimRef, '--push', '--json'], ferryEnv());
    const artifact = (JSON.parse(stdout) as { artifact: string }).artifact;
    image = await resolved(pinned());
    [base, top] = await publishedIndexes(client, image, artifact);
  }, 120_000);

  it('a signed artifact from the publisher is used', async () => {
    const seen = await look(pinned(), quietNode([keyPair().publicPath]));
    expect(seen).toMatchObject({ ...HONEST, runUid: 0 });
    expect(seen.trust.every((t) => t.startsWith('signed (key '))).toBe(true);
  });

  it('a forged, unsigned artifact pushed as the newest referrer is ignored: the node serves the image as committed', async () => {
    await pushForged(image, base, forgeTop(top));
    const seen = await look(pinned(), quietNode([keyPair().publicPath]));
    expect(seen).toMatchObject(HONEST);
    // The publisher's signed artifact is still found and used.
    expect(seen.trust.every((t) => t.startsWith('signed'))).toBe(true);
  });

  it('a forged artifact signed by a key the node does not trust is ignored', async () => {
    await pushForged(image, base, forgeTop(top), keyPair('attacker').privatePath);
    expect(await look(pinned(), quietNode([keyPair().publicPath]))).toMatchObject(HONEST);
  });

  it('a node that trusts no key builds every index from the layers themselves', async () => {
    const seen = await look(pinned(), quietNode([]));
    expect(seen).toMatchObject(HONEST);
    expect(seen.trust).toEqual(['built', 'built']);
  });

  it('a forged artifact signed by a trusted key is served: the key is the trust root', async () => {
    await pushForged(image, base, forgeTop(top), keyPair('insider').privatePath);
    const seen = await look(pinned(), quietNode([keyPair('insider').publicPath]));
    expect(seen).toMatchObject({ runMode: 0o4755, zero: true, baseConf: false });
    expect(seen.data).not.toBe(HONEST.data);
  });

  it('a node never republishes what it was not given by a trust root', async () => {
    // The node that saw the forged artifacts publishes again: what it pushes is what it built or verified.
    const env = quietNode([keyPair().publicPath]);
    const { stdout } = await ferry(['index', pinned(), '--push', '--json'], env);
    const republished = (JSON.parse(stdout) as { artifact: string }).artifact;
    const [, again] = await publishedIndexes(client, image, republished);
    expect(again.entries.find((e) => e.path === 'bin/run.sh')?.mode).toBe(0o755);
    expect(again.entries.some((e) => e.path === 'bin/zero')).toBe(false);
    rmSync(env.dir, { recursive: true, force: true });
  });
});

describe('a Ferry-enabled image index (--bind)', () => {
  it('binds the index to the digest being run: no key needed, and the plain image is untouched', async () => {
    const pub = ferryEnv();
    const { stdout } = await ferry(['index', victimRef, '--push', '--bind', 'ferry', '--json'], pub, {
      sign: false,
    });
    const bound = (JSON.parse(stdout) as { bound: string }).bound;
    expect(bound).toMatch(/victim\/app:ferry@sha256:/);
    const viaBound = await look(`${registry.host}/victim/app:ferry`, quietNode([]));
    expect(viaBound).toMatchObject(HONEST);
    expect(viaBound.trust.every((t) => t.startsWith('bound'))).toBe(true);
    const plain = await look(pinned(), quietNode([]));
    expect(plain.trust).toEqual(['built', 'built']);
    rmSync(pub.dir, { recursive: true, force: true });
  });

  it('another image sharing the victim layers cannot plant its bound index for them', async () => {
    // The attacker pushes the victim's layers as their own image and binds a forged index to it.
    const evilRef = `${registry.host}/evil/app:1`;
    await pushImage(client, evilRef, {
      layers: layers.map((data) => ({ data, mediaType: MediaType.ociLayerGzip })),
      config: { config: { Labels: { evil: 'yes' } } },
    });
    const evil = await resolved(evilRef);
    const victimImage = await resolved(pinned());
    const { stdout } = await ferry(['index', victimRef, '--push', '--json'], ferryEnv());
    const artifact = (JSON.parse(stdout) as { artifact: string }).artifact;
    const [base, top] = await publishedIndexes(client, victimImage, artifact);
    const art = await publishIndexes(client, evil, [base, forgeTop(top)]);
    await publishBoundIndex(client, evil, art, 'ferry');
    // One node runs the attacker's image first, then the victim's: the victim's layers are never served from
    // the index that came with the other image, though their digests are the same.
    const node = quietNode([]);
    const evilSeen = await look(`${registry.host}/evil/app:ferry`, node, { keep: true });
    expect(evilSeen.trust.every((t) => t.startsWith('bound'))).toBe(true);
    expect(evilSeen.runMode).toBe(0o4755); // what that image's own index says of it
    const victimSeen = await look(pinned(), node);
    expect(victimSeen).toMatchObject(HONEST);
    expect(victimSeen.trust).toEqual(['built', 'built']);
  });
});

describe('a TOC annotation on layers that hold no such TOC', () => {
  it('cannot bind an index to the victim layers: the attacker image fails, the victim mounts as committed', async () => {
    // The attacker names the victim's plain gzip layers with eStargz TOC annotations of its own choosing.
    const tocRef = `${registry.host}/evil/toc:1`;
    const pushed = await pushImage(client, tocRef, {
      layers: layers.map((data) => ({
        data,
        mediaType: MediaType.ociLayerGzip,
        annotations: { 'containerd.io/snapshot/stargz/toc.digest': `sha256:${'ab'.repeat(32)}` },
      })),
    });
    const node = quietNode([]);
    await expect(
      startMount(`${registry.host}/evil/toc@${pushed.manifestDigest}`, join(node.dir, 'evil'), node, 60_000),
    ).rejects.toThrow(/exited/);
    const seen = await look(pinned(), node);
    expect(seen).toMatchObject(HONEST);
    expect(seen.trust).toEqual(['built', 'built']);
  });
});

describe('the image config', () => {
  it('a layer that does not hash to its diffID fails the mount with a clear error', async () => {
    const liar = `${registry.host}/liar/app:1`;
    const wrong = `sha256:${'0'.repeat(64)}`;
    const pushed = await pushImage(client, liar, {
      layers: layers.map((data) => ({ data, mediaType: MediaType.ociLayerGzip })),
      config: { rootfs: { type: 'layers', diff_ids: [wrong, wrong] } },
    });
    const env = quietNode([]);
    await expect(
      startMount(`${registry.host}/liar/app@${pushed.manifestDigest}`, join(env.dir, 'rootfs'), env, 60_000),
    ).rejects.toThrow(/diffID/);
    rmSync(env.dir, { recursive: true, force: true });
  });
});
