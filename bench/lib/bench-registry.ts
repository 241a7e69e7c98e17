// A benchmark's registry: Debian's docker-registry on loopback, a FaultProxy in front (it counts the bytes that
// cross the "registry link"), a RegistryClient, and a helper that pushes an image made of cached gzip layers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MediaType } from '../../src/image/manifest.js';
import { silentLogger } from '../../src/log.js';
import { RegistryClient } from '../../src/registry/client.js';
import { FaultProxy } from '../../test/helpers/fault-proxy.js';
import { pushImage } from '../../test/helpers/push-image.js';
import { startRegistry, type TestRegistry } from '../../test/helpers/registry.js';

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

/** Pushes gzip layer files as one image `repo:tag` straight to the registry; returns its path for any host. */
export async function pushGzipImage(
  bench: BenchRegistry,
  repoTag: string,
  layerPaths: readonly string[],
): Promise<PushedBenchImage> {
  const layers = layerPaths.map((p) => ({ data: readFileSync(p), mediaType: MediaType.ociLayerGzip }));
  const pushed = await pushImage(bench.client, `${bench.registry.host}/${repoTag}`, { layers });
  return {
    repoTag,
    compressedBytes: layers.reduce((a, l) => a + l.data.length, 0),
    layerDigests: pushed.manifest.layers.map((l) => l.digest),
  };
}
