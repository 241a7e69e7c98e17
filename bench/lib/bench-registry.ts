// A benchmark's registry: Debian's docker-registry on loopback, a FaultProxy in front (it counts the bytes that
// cross the "registry link"), a RegistryClient, and a helper that pushes an image made of cached gzip layers.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Digest } from '../../src/image/digest.js';
import { MediaType, type ImageManifest } from '../../src/image/manifest.js';
import { silentLogger } from '../../src/log.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { FaultProxy } from '../../test/helpers/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../../test/helpers/registry.js';

const run = promisify(execFile);

export interface BenchRegistry {
  registry: TestRegistry;
  /** Storage root of the registry, for a second registry process serving the same blobs. */
  dataDir: string;
  proxy: FaultProxy;
  client: RegistryClient;
  close(): Promise<void>;
}

export function benchClient(): RegistryClient {
  return new RegistryClient({
    log: silentLogger(),
    requestTimeoutMs: 600_000,
    maxConcurrencyPerHost: 8,
    retries: 2,
  });
}

export async function startBenchRegistry(): Promise<BenchRegistry> {
  const registry = await startRegistry();
  const proxy = await new FaultProxy(registry.host).start();
  const client = benchClient();
  return {
    registry,
    dataDir: join(registry.dir, 'data'),
    proxy,
    client,
    async close() {
      await client.close();
      await proxy.stop();
      await registry.stop();
    },
  };
}

export interface PushedBenchImage {
  /** `<registry host>/<repo>:<tag>`, pushed directly to the registry (not through the proxy). */
  repoTag: string;
  compressedBytes: number;
  layerDigests: string[];
}

/**
 * Pushes gzip layer files as one image `repo:tag` straight to the registry; returns its path for any host.
 * Layers are streamed from disk (curl uploads, sha256sum hashes): model layers are over 2 GiB, more than one
 * Buffer holds.
 */
export async function pushGzipImage(
  bench: BenchRegistry,
  repoTag: string,
  layerPaths: readonly string[],
): Promise<PushedBenchImage> {
  const ref = parseReference(`${bench.registry.host}/${repoTag}`);
  const layers = [];
  const diffIds: Digest[] = [];
  for (const path of layerPaths) {
    const digest = await shellDigest(`sha256sum < "${path}"`);
    diffIds.push(await shellDigest(`set -o pipefail; pigz -dc < "${path}" | sha256sum`));
    await uploadFile(`http://${bench.registry.host}/v2/${ref.repository}`, path, digest);
    layers.push({ mediaType: MediaType.ociLayerGzip, digest, size: statSync(path).size });
  }
  const config = Buffer.from(
    JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  const configDesc = { ...(await bench.client.pushBlob(ref, config)), mediaType: MediaType.ociConfig };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: configDesc,
    layers,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  await bench.client.pushManifest(ref, ref.tag ?? 'latest', bytes, MediaType.ociManifest);
  return {
    repoTag,
    compressedBytes: layers.reduce((a, l) => a + l.size, 0),
    layerDigests: layers.map((l) => l.digest),
  };
}

async function shellDigest(script: string): Promise<Digest> {
  const { stdout } = await run('bash', ['-c', script], { maxBuffer: 1 << 16 });
  return `sha256:${stdout.slice(0, 64)}` as Digest;
}

/** Monolithic upload of one file: POST for a session, then PUT with the digest (the registry checks it). */
async function uploadFile(repoUrl: string, path: string, digest: Digest): Promise<void> {
  const { stdout } = await run('curl', [
    '-sSf',
    '-X',
    'POST',
    '-D',
    '-',
    '-o',
    '/dev/null',
    `${repoUrl}/blobs/uploads/`,
  ]);
  const location = /^location:\s*(\S+)/im.exec(stdout)?.[1];
  if (location === undefined) throw new Error(`upload to ${repoUrl}: no Location in\n${stdout}`);
  const target = new URL(location, repoUrl);
  target.searchParams.set('digest', digest);
  await run('curl', [
    '-sSf',
    '-X',
    'PUT',
    '-H',
    'content-type: application/octet-stream',
    '-T',
    path,
    target.href,
  ]);
}
