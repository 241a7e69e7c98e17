// Shared bits for registry-client unit tests: a client factory and a small valid manifest.
import { silentLogger } from '../../src/log.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient, type RegistryClientOptions } from '../../src/registry/client.js';

export function testClient(extra: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({
    log: silentLogger(),
    requestTimeoutMs: 5_000,
    maxConcurrencyPerHost: 4,
    retries: 0,
    retryBaseDelayMs: 10,
    platform: { os: 'linux', architecture: 'amd64' },
    ...extra,
  });
}

export const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256('{}'), size: 2 },
    layers: [],
  }),
);
export const MANIFEST_DIGEST = sha256(MANIFEST);
