// The P2P node a process runs: peer server + membership + client, built from the `[p2p]` config section.
// `ferry mount` (and later the daemon) calls startP2PNode, wraps its origin with wrapOrigin, and registers the
// layers it serves so owners can fetch on behalf of peers. stop() tears it all down.
import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { FerryConfig } from '../config/schema.js';
import type { Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import type { ChunkStore } from '../chunks/chunk-store.js';
import type { ChunkRequest, ChunkSource } from '../source/chunk-source.js';
import type { PeerIndexRequest } from '../index/source-peer.js';
import { owners } from './rendezvous.js';
import type { TierCounter } from '../source/origin-source.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { PeerAuth } from './auth.js';
import { realClock, type Clock } from './clock.js';
import { Discovery, parsePeer, peerId } from './discovery.js';
import { Membership } from './membership.js';
import { PeerClient } from './peer-client.js';
import { PeerLimits } from './peer-limits.js';
import { PeerServer, type PeerServerStats } from './peer-server.js';
import { PeerFirstSource, type PeerFirstStats } from './peer-source.js';

export type P2PSettings = FerryConfig['p2p'];

/** Right after start, how long an index request waits for the peers to come up, so all pick the same owner. */
const INDEX_SETTLE_MS = 3000;

export interface P2PNodeOptions {
  settings: Readonly<P2PSettings>;
  /** The node's chunk store: what it already holds is served to peers directly. */
  store: ChunkStore;
  /**
   * The serialized index of a layer, for a peer that asked (`/index/`): held here, else through `viaOwner` (the
   * owner this node sees; absent when that is this node or the request was already sent on), else built once.
   */
  indexForPeer?:
    | ((
        req: PeerIndexRequest,
        signal: AbortSignal,
        viaOwner: (() => Promise<Buffer | undefined>) | undefined,
      ) => Promise<Buffer>)
    | undefined;
  log: Logger;
  clock?: Clock;
}

export interface P2PStats {
  self: string;
  live: readonly string[];
  peer: TierCounter;
  registry: TierCounter;
  hedges: number;
  peerFailures: number;
  peerNotFound: number;
  badBytes: number;
  badAuth: number;
  stalls: number;
  /** Index requests this node sent on to the owner it sees, answered by that owner. */
  indexesForwarded: number;
  server: PeerServerStats;
  peers: ReturnType<Membership['snapshot']>;
}

interface Registered {
  index: LayerIndex;
  source: ChunkSource;
}

export class P2PNode {
  readonly self: string;
  readonly membership: Membership;
  private readonly sources: PeerFirstSource[] = [];
  private readonly layers = new Map<Digest, Registered>();
  private readonly onBehalf = new WeakSet<ChunkRequest>();
  private indexesForwarded = 0;

  constructor(
    private readonly o: P2PNodeOptions & { clock: Clock },
    private readonly client: PeerClient,
    private readonly server: PeerServer,
    self: string,
    discovery: Discovery,
  ) {
    this.self = self;
    const s = o.settings;
    this.membership = new Membership({
      self,
      candidates: () => discovery.candidates(),
      probe: (peer, signal) => client.probe(peer, signal),
      onDown: (peer) => client.drop(peer),
      clock: o.clock,
      log: o.log,
      probeIntervalMs: s.probeIntervalMs,
      probeTimeoutMs: s.probeTimeoutMs,
      refreshIntervalMs: s.refreshIntervalMs,
      penaltyMs: s.penaltyMs,
    });
    discovery.watchFile(() => void this.membership.refresh().catch(() => undefined));
    this.stopDiscovery = () => discovery.unwatch();
  }

  private readonly stopDiscovery: () => void;

  /** A ChunkSource that asks owners before `origin` (pass it to composeSource as originOverride). */
  wrapOrigin(origin: ChunkSource): PeerFirstSource {
    const s = this.o.settings;
    const source = new PeerFirstSource({
      view: this.membership,
      transport: this.client,
      origin,
      clock: this.o.clock,
      log: this.o.log,
      ownerCount: s.ownerCount,
      hedgeAfterMs: s.hedgeAfterMs,
      peerTimeoutMs: s.peerTimeoutMs,
      // A healthy peer answers headers at once (from its cache, or "pending" while it fetches for us).
      stallAfterMs: Math.max(1000, 3 * s.probeTimeoutMs),
      onBehalf: this.onBehalf,
    });
    this.sources.push(source);
    return source;
  }

  /** Lets peers ask this node for chunks of `indexes`; `source` is the composed stack (dedupe on top). */
  register(indexes: readonly LayerIndex[], source: ChunkSource): () => void {
    for (const index of indexes) this.layers.set(index.layerDigest, { index, source });
    return () => {
      for (const index of indexes)
        if (this.layers.get(index.layerDigest)?.source === source) this.layers.delete(index.layerDigest);
    };
  }

  /**
   * The index the layer's owner built (rendezvous on the layer digest over live peers), so that a cluster
   * streams an unmodified layer once: undefined when this node is the owner (it builds, and serves the others)
   * or the owner fails or stays silent past `indexTimeoutMs` (then this node builds too).
   */
  async fetchIndex(
    req: PeerIndexRequest,
    signal?: AbortSignal,
  ): Promise<{ bytes: Buffer; peer: string } | undefined> {
    await this.membership.settled(INDEX_SETTLE_MS);
    signal?.throwIfAborted();
    return this.askOwner(req, signal);
  }

  /**
   * For a peer that asked this node for a layer it does not own as this node sees the cluster: the owner's
   * index, or undefined when this node is the owner, or the owner fails (then this node builds).
   */
  async forwardIndex(req: PeerIndexRequest, signal: AbortSignal): Promise<Buffer | undefined> {
    return (await this.askOwner({ ...req, forwarded: true }, signal))?.bytes;
  }

  private async askOwner(
    req: PeerIndexRequest,
    signal?: AbortSignal,
  ): Promise<{ bytes: Buffer; peer: string } | undefined> {
    const [owner] = owners(req.layer.digest, this.membership.live(), 1);
    if (owner === undefined || owner === this.self) return undefined;
    const timeout = AbortSignal.timeout(this.o.settings.indexTimeoutMs);
    const both = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    try {
      const bytes = await this.client.fetchIndex(owner, req, both);
      if (bytes !== undefined && req.forwarded === true) this.indexesForwarded++;
      return bytes === undefined ? undefined : { bytes, peer: owner };
    } catch (e) {
      signal?.throwIfAborted();
      this.o.log.warn({ err: e, owner, layer: req.layer.digest }, 'p2p: the layer owner sent no index');
      return undefined;
    }
  }

  /** Used by the peer server: a fetch through the registered stack, marked so it never bounces to a peer. */
  fetcherFor(
    layerDigest: Digest,
    chunkIndex: number,
    chunkDigest: Digest,
  ): ((signal: AbortSignal) => Promise<Buffer>) | undefined {
    const r = this.layers.get(layerDigest);
    if (r === undefined || r.index.chunks[chunkIndex]?.digest !== chunkDigest) return undefined;
    return (signal) => {
      const req: ChunkRequest = { index: r.index, chunk: chunkIndex, priority: 'demand' };
      this.onBehalf.add(req);
      return r.source.fetch(req, signal);
    };
  }

  stats(): P2PStats {
    const sum = (f: (s: PeerFirstStats) => number): number =>
      this.sources.reduce((a, s) => a + f(s.stats()), 0);
    return {
      self: this.self,
      live: this.membership.live(),
      peer: { chunks: sum((s) => s.peer.chunks), bytes: sum((s) => s.peer.bytes) },
      registry: { chunks: sum((s) => s.registry.chunks), bytes: sum((s) => s.registry.bytes) },
      hedges: sum((s) => s.hedges),
      peerFailures: sum((s) => s.peerFailures),
      peerNotFound: sum((s) => s.peerNotFound),
      badBytes: sum((s) => s.badBytes),
      badAuth: sum((s) => s.badAuth),
      stalls: sum((s) => s.stalls),
      indexesForwarded: this.indexesForwarded,
      server: this.server.stats(),
      peers: this.membership.snapshot(),
    };
  }

  async stop(): Promise<void> {
    this.membership.stop();
    this.stopDiscovery();
    this.client.close();
    await this.server.close();
  }
}

async function loadSecret(s: Readonly<P2PSettings>): Promise<Buffer> {
  if (s.clusterSecretFile !== undefined) {
    let text: string;
    try {
      text = await readFile(s.clusterSecretFile, 'utf8');
    } catch (e) {
      throw new NotFoundError(`p2p.clusterSecretFile: cannot read ${s.clusterSecretFile}`, { cause: e });
    }
    return Buffer.from(text.trim(), 'utf8');
  }
  if (s.secret !== undefined) return Buffer.from(s.secret, 'utf8');
  throw new InvalidArgumentError(
    'p2p.enabled needs p2p.clusterSecretFile or p2p.secret (peers are authenticated)',
  );
}

/** Builds and starts a node: listens, then discovers and probes peers. */
export async function startP2PNode(options: P2PNodeOptions): Promise<P2PNode> {
  const s = options.settings;
  const clock = options.clock ?? realClock;
  const listen = parsePeer(s.listen);
  if (listen === undefined) throw new InvalidArgumentError(`p2p.listen: bad address ${s.listen}`);
  const advertised = parsePeer(s.advertise ?? s.listen);
  if (advertised === undefined)
    throw new InvalidArgumentError(`p2p.advertise: bad address ${s.advertise ?? ''}`);
  if (isWildcard(peerId(advertised.host, advertised.port)))
    throw new InvalidArgumentError('p2p.advertise is needed when p2p.listen is a wildcard address');
  const auth = new PeerAuth({ secret: await loadSecret(s) });
  const log = options.log.child({ component: 'p2p' });
  const client = new PeerClient({ auth, maxBodyBytes: 64 * 1024 * 1024 });
  const built: { node?: P2PNode } = {}; // the server starts before the node exists
  const self = peerId(advertised.host, advertised.port);
  const { indexForPeer } = options;
  const server = new PeerServer({
    host: listen.host,
    port: listen.port,
    // Requests MAC'd for another node are refused; the listen address counts when peers may dial it directly.
    selfIds: [...new Set([self, peerId(listen.host, listen.port)])].filter((id) => !isWildcard(id)),
    auth,
    limits: new PeerLimits({
      maxConcurrent: s.maxConcurrentPerPeer,
      requestsPerSecond: s.maxRequestsPerSecondPerPeer,
      clock,
    }),
    responder: {
      local: (digest, signal) => options.store.get(digest, signal),
      fetcher: (req) => built.node?.fetcherFor(req.layerDigest, req.chunkIndex, req.chunkDigest),
      index:
        indexForPeer === undefined
          ? undefined
          : (req, signal) =>
              indexForPeer(
                req,
                signal,
                // Sent on at most once: a node asked by a forwarder answers from what it holds or builds.
                req.forwarded === true || built.node === undefined
                  ? undefined
                  : () => built.node?.forwardIndex(req, signal) ?? Promise.resolve(undefined),
              ),
    },
    log,
  });
  await server.listen();
  const discovery = new Discovery({
    staticPeers: s.peers,
    ...(s.dnsName !== undefined ? { dnsName: s.dnsName } : {}),
    ...(s.peersFile !== undefined ? { peersFile: s.peersFile } : {}),
    defaultPort: listen.port,
    log,
  });
  const node = new P2PNode({ ...options, log, clock }, client, server, self, discovery);
  built.node = node;
  await node.membership.start();
  log.info({ self: node.self }, `p2p: serving peers on ${s.listen} as ${node.self}`);
  return node;
}

function isWildcard(id: string): boolean {
  return id.startsWith('0.0.0.0:') || id.startsWith('[::]:');
}
