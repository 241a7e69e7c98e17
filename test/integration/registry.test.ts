// RegistryClient against a real docker-registry 2.8: push, multi-platform resolve, Range reads, referrers
// (via the tag-schema fallback, since 2.8 has no referrers API) and rejection of malformed manifests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { silentLogger } from '../../src/log.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType, parseManifest } from '../../src/image/manifest.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { referrersTag } from '../../src/registry/referrers.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { diffId, pushImage, pushIndex, type PushedImage } from '../helpers/push-image.js';

let registry: TestRegistry;
let amd64: PushedImage;
let arm64: PushedImage;
let indexDigest: string;
const raw = randomBytes(300_000);
const gz = gzipSync(Buffer.concat([Buffer.from('layer-one '), randomBytes(200_000)]));
const zst = execFileSync('zstd', ['-c', '-q'], { input: Buffer.from('zstd layer '.repeat(5000)) });

const client = (platform = { os: 'linux', architecture: 'amd64' }) =>
  new RegistryClient({
    log: silentLogger(),
    requestTimeoutMs: 10_000,
    maxConcurrencyPerHost: 4,
    retries: 1,
    platform,
  });
let c: RegistryClient;

beforeAll(async () => {
  registry = await startRegistry();
  c = client();
  const repo = `${registry.host}/ferry/test`;
  amd64 = await pushImage(c, `${repo}:amd64`, {
    layers: [
      { data: gz, mediaType: MediaType.ociLayerGzip, annotations: { 'containerd.io/snapshot/x': 'y' } },
      { data: zst, mediaType: MediaType.ociLayerZstd },
      { data: raw, mediaType: MediaType.ociLayer },
    ],
  });
  arm64 = await pushImage(c, `${repo}:arm64`, {
    layers: [{ data: gzipSync(Buffer.from('arm')), mediaType: MediaType.ociLayerGzip }],
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  });
  const attestation = await pushImage(c, `${repo}:att`, { layers: [] });
  ({ indexDigest } = await pushIndex(c, `${repo}:multi`, [
    {
      mediaType: MediaType.ociManifest,
      digest: attestation.manifestDigest,
      size: attestation.manifestBytes.length,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    },
    { image: arm64, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { image: amd64, platform: { os: 'linux', architecture: 'amd64' } },
  ]));
});

afterAll(async () => {
  await c?.close();
  await registry?.stop();
});

describe('docker-registry integration', () => {
  it('resolves a tag that names a manifest', async () => {
    const r = await c.resolve(parseReference(`${registry.host}/ferry/test:amd64`));
    expect(r.manifestDigest).toBe(amd64.manifestDigest);
    expect(r.indexDigest).toBeUndefined();
    expect(r.mediaType).toBe(MediaType.ociManifest);
    expect(r.manifest.layers.map((l) => l.mediaType)).toEqual([
      MediaType.ociLayerGzip,
      MediaType.ociLayerZstd,
      MediaType.ociLayer,
    ]);
    expect(r.manifest.layers[0]?.annotations).toEqual({ 'containerd.io/snapshot/x': 'y' });
    expect(sha256(r.manifestBytes)).toBe(amd64.manifestDigest);
  });

  it('follows a multi-platform index to the right manifest, skipping the attestation', async () => {
    const ref = parseReference(`${registry.host}/ferry/test:multi`);
    const onAmd = await c.resolve(ref);
    expect(onAmd.manifestDigest).toBe(amd64.manifestDigest);
    expect(onAmd.indexDigest).toBe(indexDigest);
    const armClient = client({ os: 'linux', architecture: 'aarch64' });
    expect((await armClient.resolve(ref)).manifestDigest).toBe(arm64.manifestDigest);
    const s390 = client({ os: 'linux', architecture: 's390x' });
    await expect(s390.resolve(ref)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: /linux\/s390x.*offers: linux\/arm64, linux\/amd64/,
    });
    await Promise.all([armClient.close(), s390.close()]);
  });

  it('resolves by digest (manifest and index) and verifies it', async () => {
    const byManifest = await c.resolve(parseReference(`${registry.host}/ferry/test@${amd64.manifestDigest}`));
    expect(byManifest.manifestDigest).toBe(amd64.manifestDigest);
    const byIndex = await c.resolve(parseReference(`${registry.host}/ferry/test@${indexDigest}`));
    expect(byIndex.indexDigest).toBe(indexDigest);
    expect(byIndex.manifestDigest).toBe(amd64.manifestDigest);
    const raw = await c.fetchManifest(parseReference(`${registry.host}/ferry/test:multi`));
    expect(raw.digest).toBe(indexDigest);
    expect(parseManifest(raw.bytes, raw.mediaType, 'multi').kind).toBe('index');
    await expect(
      c.resolve(parseReference(`${registry.host}/ferry/test@${sha256('missing')}`)),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('fetches the config with correct diff_ids', async () => {
    const ref = parseReference(`${registry.host}/ferry/test:amd64`);
    const config = JSON.parse((await c.fetchBlob(ref, amd64.configDigest, 1 << 20)).toString()) as {
      rootfs: { diff_ids: string[] };
    };
    expect(config.rootfs.diff_ids).toEqual([
      diffId({ data: gz, mediaType: MediaType.ociLayerGzip }),
      diffId({ data: zst, mediaType: MediaType.ociLayerZstd }),
      sha256(raw),
    ]);
    expect(config.rootfs.diff_ids[1]).toBe(sha256(Buffer.from('zstd layer '.repeat(5000))));
  });

  it('reads ranges of a layer blob', async () => {
    const ref = parseReference(`${registry.host}/ferry/test:amd64`);
    const digest = sha256(raw);
    const reader = c.blobReader(ref, digest);
    expect(await reader.size()).toBe(raw.length);
    for (const [s, e] of [
      [0, 1],
      [12_345, 67_890],
      [raw.length - 10, raw.length],
      [4096, 4096 + 65536],
    ] as const) {
      expect((await reader.readRange(s, e)).equals(raw.subarray(s, e))).toBe(true);
    }
    const unknownSize = c.blobReader(ref, digest);
    await expect(unknownSize.readRange(raw.length + 10, raw.length + 20)).rejects.toMatchObject({
      code: 'FORMAT',
    });
    const parts: Buffer[] = [];
    for await (const chunk of await c.blobReader(ref, digest, raw.length).stream()) parts.push(chunk);
    expect(Buffer.concat(parts).equals(raw)).toBe(true);
    await expect(c.blobReader(ref, sha256('nope')).readRange(0, 1)).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('skips blobs that already exist and is idempotent on re-push', async () => {
    const ref = parseReference(`${registry.host}/ferry/test:amd64`);
    const d = await c.pushBlob(ref, raw);
    expect(d).toEqual({ mediaType: 'application/octet-stream', digest: sha256(raw), size: raw.length });
  });

  it('finds referrers through the tag-schema fallback, filtered by artifactType', async () => {
    const repo = `${registry.host}/ferry/test`;
    const subject = {
      mediaType: MediaType.ociManifest,
      digest: amd64.manifestDigest,
      size: amd64.manifestBytes.length,
    };
    const art1 = await pushImage(c, `${repo}:art1`, {
      layers: [{ data: Buffer.from('index bytes'), mediaType: 'application/vnd.ferry.layer-index.v1' }],
      artifactType: 'application/vnd.ferry.index.v1',
      subject,
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    });
    const art2 = await pushImage(c, `${repo}:art2`, {
      layers: [{ data: Buffer.from('trace'), mediaType: 'application/vnd.ferry.trace.v1' }],
      artifactType: 'application/vnd.ferry.trace.v1',
      subject,
    });
    const ref = parseReference(repo);
    const all = await c.referrers(ref, amd64.manifestDigest);
    expect(all.map((d) => d.digest).sort()).toEqual([art1.manifestDigest, art2.manifestDigest].sort());
    const onlyIndex = await c.referrers(ref, amd64.manifestDigest, 'application/vnd.ferry.index.v1');
    expect(onlyIndex).toHaveLength(1);
    expect(onlyIndex[0]).toMatchObject({
      digest: art1.manifestDigest,
      artifactType: 'application/vnd.ferry.index.v1',
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    });
    // The fallback tag really is what holds them.
    const tagged = await c.fetchManifest(parseReference(`${repo}:${referrersTag(amd64.manifestDigest)}`));
    expect(tagged.mediaType).toBe(MediaType.ociIndex);
    expect(await c.referrers(ref, arm64.manifestDigest)).toEqual([]);
    // Re-pushing the same artifact does not duplicate it.
    await c.pushManifest(ref, 'art1-again', art1.manifestBytes, MediaType.ociManifest);
    expect(await c.referrers(ref, amd64.manifestDigest)).toHaveLength(2);
  });

  it('rejects malformed manifests: the registry refuses them on push, and empty indexes resolve to nothing', async () => {
    const ref = parseReference(`${registry.host}/ferry/test`);
    await expect(
      c.pushManifest(ref, 'bad', Buffer.from('not json'), MediaType.ociManifest),
    ).rejects.toMatchObject({
      code: 'FORMAT',
      message: /MANIFEST_INVALID/,
    });
    const empty = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }),
    );
    await c.pushManifest(ref, 'empty', empty, MediaType.ociIndex);
    await expect(c.resolve(parseReference(`${registry.host}/ferry/test:empty`))).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: /offers: none/,
    });
    await expect(c.resolve(parseReference(`${registry.host}/ferry/test:nosuchtag`))).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: /MANIFEST_UNKNOWN/,
    });
  });
});
