// The node's shared parts, built once from the config for any command: logger, registry client, chunk and index
// stores, index provider, the P2P node and the node's one chunk service (peers included when `[p2p] enabled`).
import { loadConfig, validateConfig, type FerryConfig, type ResolvedConfig } from '../config/load.js';
import { configFields } from '../config/resolve.js';
import { createLogger, type Logger } from '../log.js';
import { parsePlatform } from '../image/platform.js';
import { InvalidArgumentError } from '../errors.js';
import { privateDir } from '../private-fs.js';
import { RegistryClient } from '../registry/client.js';
import {
  ChainCredentials,
  StaticCredentials,
  type Credential,
  type CredentialSource,
} from '../registry/credentials.js';
import { DockerConfigCredentials } from '../registry/docker-config.js';
import { DiskChunkStore } from '../chunks/disk-chunk-store.js';
import { MemoryChunkStore } from '../chunks/memory-chunk-store.js';
import { TieredChunkStore } from '../chunks/tiered-chunk-store.js';
import type { ChunkStore } from '../chunks/chunk-store.js';
import { IndexStore } from '../index/index-store.js';
import { IndexProvider } from '../index/provider.js';
import { loadTrustedKeys } from '../index/signature.js';
import type { P2PNode } from '../p2p/p2p-node.js';
import { readSecretFile } from '../config/secret.js';
import { DecodePool } from '../codec/worker-pool.js';
import { ChunkService } from '../source/chunk-service.js';

export interface NodeContext {
  readonly config: ResolvedConfig;
  readonly log: Logger;
  readonly registry: RegistryClient;
  readonly indexStore: IndexStore;
  readonly chunks: ChunkStore;
  readonly provider: IndexProvider;
  /** The started peer node when `[p2p] enabled` (first call starts it; close() stops it). */
  p2p(): Promise<P2PNode | undefined>;
  /** The node's chunk service, built on first call (after starting the peer node); close() ends its pool. */
  chunkService(): Promise<ChunkService>;
  close(): Promise<void>;
}

/** The cluster secret file is held to the same rules as an inline `secret` (the schema checks that one). */
async function checkClusterSecret(path: string | undefined): Promise<void> {
  if (path !== undefined) await readSecretFile(path, 'p2p.clusterSecretFile');
}

function credentialSource(config: FerryConfig, log: Logger): CredentialSource {
  const fromConfig: Record<string, Credential> = {};
  for (const c of config.registry.credentials) {
    if (c.identityToken !== undefined) fromConfig[c.host] = { identityToken: c.identityToken };
    else if (c.username !== undefined)
      fromConfig[c.host] = { username: c.username, password: c.password ?? '' };
  }
  const sources: CredentialSource[] = [new StaticCredentials({ credentials: fromConfig })];
  if (config.registry.dockerConfig) sources.push(new DockerConfigCredentials({ log }));
  return new ChainCredentials({ sources });
}

export async function createContext(opts: {
  configPath?: string | undefined;
  logLevel?: string;
  /** The daemon logs where config daemon.logTo says (stdout under journald); other commands to stderr. */
  daemon?: boolean;
  /** Overrides `[index] chunkSizeBytes` (`ferry index --chunk-size`), within the same bounds. */
  indexChunkSizeBytes?: number | undefined;
}): Promise<NodeContext> {
  const loaded = await loadConfig(opts.configPath);
  const config =
    opts.indexChunkSizeBytes === undefined
      ? loaded
      : validateConfig(
          {
            ...configFields(loaded),
            index: { ...loaded.index, chunkSizeBytes: opts.indexChunkSizeBytes },
          },
          '--chunk-size',
        );
  const log = createLogger({
    level: opts.logLevel ?? config.daemon.logLevel,
    to: opts.daemon === true ? config.daemon.logTo : 'stderr',
  });
  let platform;
  if (config.registry.platform !== undefined) {
    platform = parsePlatform(config.registry.platform);
    if (platform === undefined)
      throw new InvalidArgumentError(`registry.platform: bad platform ${config.registry.platform}`);
  }
  const registry = new RegistryClient({
    log,
    credentials: credentialSource(config, log),
    insecureHosts: config.registry.insecureHosts,
    mirrors: config.registry.mirrors,
    requestTimeoutMs: config.registry.requestTimeoutMs,
    maxConcurrencyPerHost: config.registry.maxConcurrencyPerHost,
    retries: config.registry.retries,
    platform,
  });
  // Ferry's own dirs: private (images may be), an existing one tightened (the cache dir by the store's open).
  for (const d of config.deprecations)
    log.warn({ key: d.old, use: d.use }, `config: ${d.old} is deprecated, use ${d.use}`);
  await privateDir(config.paths.stateDir);
  const disk = new DiskChunkStore({
    dir: config.paths.cacheDir,
    maxBytes: config.cache.maxBytes,
    verifyReads: config.cache.verifyDiskReads,
    log,
  });
  await disk.open();
  // memoryBytes = 0 turns the memory tier off (the page cache still serves re-reads).
  const chunks: ChunkStore =
    config.cache.memoryBytes > 0
      ? new TieredChunkStore({ memory: new MemoryChunkStore({ maxBytes: config.cache.memoryBytes }), disk })
      : disk;
  const indexStore = new IndexStore({ dir: config.paths.indexDir });
  // The P2P node starts later (ctx.p2p()); the provider asks the cluster only once it runs.
  let p2pNode: P2PNode | undefined;
  const provider = new IndexProvider({
    store: indexStore,
    registry,
    log,
    chunkSizeBytes: config.index.chunkSizeBytes,
    spanBytes: config.index.spanBytes,
    trustedKeys: await loadTrustedKeys(config.index.trustedKeys),
    peers: () => p2pNode,
    // A build streams the whole layer anyway: keep its chunks so the first reads after it are local.
    onBuiltChunk: (digest, bytes) => void chunks.put(digest, bytes),
  });
  let p2p: Promise<P2PNode | undefined> | undefined;
  const startP2P = (): Promise<P2PNode | undefined> =>
    (p2p ??= config.p2p.enabled
      ? checkClusterSecret(config.p2p.clusterSecretFile).then(async () =>
          // Loaded only when `[p2p] enabled`: a plain mount's start-up does not pay for the peer modules.
          (await import('../p2p/p2p-node.js'))
            .startP2PNode({
              settings: config.p2p,
              store: chunks,
              log,
              // As a layer's owner, this node builds its index once and sends it to every peer that asks.
              indexForPeer: (req, signal, viaOwner) => provider.indexForPeer(req, signal, viaOwner),
            })
            .then((node) => (p2pNode = node)),
        )
      : Promise.resolve(undefined));
  let pool: DecodePool | undefined;
  let service: Promise<ChunkService> | undefined;
  const chunkService = (): Promise<ChunkService> =>
    (service ??= startP2P().then(
      (peers) =>
        new ChunkService({
          store: chunks,
          registry,
          pool: (pool = new DecodePool()),
          concurrency: config.registry.maxConcurrencyPerHost,
          log,
          peers,
        }),
    ));
  return {
    config,
    log,
    registry,
    indexStore,
    chunks,
    provider,
    p2p: startP2P,
    chunkService,
    close: async () => {
      await (await p2p?.catch(() => undefined))?.stop();
      await pool?.close();
      await registry.close();
      log.flush();
    },
  };
}
