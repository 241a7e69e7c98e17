// One simulated Ferry node: the real fetch stack (DedupeSource → store → LimitSource → VerifySource →
// PeerFirstSource) over a simulated registry and a simulated peer transport, plus the owner side of the peer
// protocol modelled on src/p2p/peer-server.ts (serve from the store, or accept and fetch on the requester's
// behalf through the same stack, so the node's singleflight covers its own reads and its peers').
import { setMaxListeners } from 'node:events';
import type { Logger } from '../../src/log.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { AbortedError, UnavailableError } from '../../src/errors.js';
import type { ChunkRequest, ChunkSource } from '../../src/source/chunk-source.js';
import { DedupeSource } from '../../src/source/dedupe.js';
import { LimitSource } from '../../src/source/limit.js';
import { VerifySource } from '../../src/source/verify.js';
import { PeerFirstSource, type PeerChunkRequest, type PeerTransport } from '../../src/p2p/peer-source.js';
import type { SimClock } from './sim-clock.js';
import { Link, type SimNetwork } from './sim-network.js';
import { SimView } from './sim-view.js';

export interface SimParams {
  chunks: number;
  /** Simulated size of a chunk on the wire (the payload the real code hashes is a few bytes). */
  chunkBytes: number;
  registryMbit: number;
  nodeMbit: number;
  latencyMs: number;
  /** Concurrent readers per node (sha256sum over files, as in bench/p2p.ts, is 1). */
  readers: number;
  /** LimitSource concurrency ([source] concurrency, default 8). */
  fetchConcurrency: number;
  ownerCount: number;
  hedgeAfterMs: number;
  peerTimeoutMs: number;
  /** A request to a vanished node that the requester has no detection time for fails after this long. */
  deadTimeoutMs: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  /**
   * Optional host CPU model (0 = off): every MiB a node receives costs this much CPU (HTTP/2, verify, decode,
   * FUSE, the reader) on a host whose `hostCores` are shared by all nodes, as in the one-machine namespace run.
   */
  cpuMsPerMiB: number;
  hostCores: number;
}

export interface SimWorld {
  readonly clock: SimClock;
  readonly net: SimNetwork;
  readonly registryUp: Link;
  readonly index: LayerIndex;
  readonly payload: readonly Buffer[];
  readonly params: SimParams;
  readonly nodes: Map<string, SimNode>;
  readonly log: Logger;
  /** The shared host CPU as a FIFO server (only used when params.cpuMsPerMiB > 0). */
  readonly hostCpu: Link;
}

class SimStore implements ChunkSource {
  constructor(
    private readonly node: SimNode,
    private readonly next: ChunkSource,
  ) {}
  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    const held = this.node.cache.get(req.chunk);
    if (held !== undefined) return held;
    const bytes = await this.next.fetch(req, signal);
    this.node.cache.set(req.chunk, bytes);
    return bytes;
  }
}

class SimRegistry implements ChunkSource {
  constructor(
    private readonly w: SimWorld,
    private readonly node: SimNode,
  ) {}
  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    await this.w.net.hop();
    await this.w.net.transfer(this.w.registryUp, this.node.down, this.w.params.chunkBytes, signal);
    await this.node.process(signal);
    return this.w.payload[req.chunk]!;
  }
}

export class SimNode implements PeerTransport {
  readonly up: Link;
  readonly down: Link;
  readonly cache = new Map<number, Buffer>();
  readonly view: SimView;
  readonly peerFirst: PeerFirstSource;
  readonly source: ChunkSource;
  alive = true;
  startedAt = 0;
  doneAt: number | undefined;
  readErrors = 0;
  fetchedForPeers = 0;
  private readonly onBehalf = new WeakSet<ChunkRequest>();
  private readonly life = new AbortController();
  /** The requests this node is serving, by requester: failed when the requester notices the departure. */
  readonly serving = new Map<(e: Error) => void, string>();
  /** After departure: when each peer's Membership notices (its probe fails; onDown drops the connection). */
  private detectAt = new Map<string, number>();

  constructor(
    private readonly w: SimWorld,
    readonly id: string,
    peers: readonly string[],
  ) {
    const p = w.params;
    setMaxListeners(0, this.life.signal);
    this.up = new Link(p.nodeMbit);
    this.down = new Link(p.nodeMbit);
    this.view = new SimView({
      self: id,
      peers,
      clock: w.clock,
      alive: (peer) => w.nodes.get(peer)?.alive === true,
      probeTimeoutMs: p.probeTimeoutMs,
      maxBackoffMs: 2000,
    });
    this.peerFirst = new PeerFirstSource({
      view: this.view,
      transport: this,
      origin: new SimRegistry(w, this),
      clock: w.clock,
      log: w.log,
      ownerCount: p.ownerCount,
      hedgeAfterMs: p.hedgeAfterMs,
      peerTimeoutMs: p.peerTimeoutMs,
      onBehalf: this.onBehalf,
    });
    const limit = new LimitSource({
      next: new VerifySource({ next: this.peerFirst }),
      concurrency: p.fetchConcurrency,
    });
    this.source = new DedupeSource({ next: new SimStore(this, limit) });
  }

  /** Every reader takes the next chunk in index order (all nodes read the same files in the same order). */
  async readWorkingSet(): Promise<void> {
    this.startedAt = this.w.clock.now();
    let next = 0;
    const reader = async (): Promise<void> => {
      while (this.alive && next < this.w.params.chunks) {
        const req: ChunkRequest = { index: this.w.index, chunk: next++, priority: 'demand' };
        if (this.cache.has(req.chunk)) continue;
        try {
          await this.source.fetch(req, this.life.signal);
        } catch {
          if (this.alive) this.readErrors++;
        }
      }
    };
    await Promise.all(Array.from({ length: this.w.params.readers }, reader));
    if (this.alive && this.cache.size === this.w.params.chunks) this.doneAt = this.w.clock.now();
  }

  /** The host CPU time a received chunk costs (nothing unless the CPU model is on). */
  async process(signal?: AbortSignal): Promise<void> {
    const { params, hostCpu, net } = this.w;
    if (params.cpuMsPerMiB > 0) await net.transfer(hostCpu, hostCpu, params.chunkBytes, signal);
  }

  /**
   * Leaves without a word (a vanished host): requests to it, in flight or new, hang until the requester's
   * Membership notices at `detectAt` (its probe times out and onDown drops the connection), then fail.
   */
  depart(detectAt: Map<string, number>): void {
    this.alive = false;
    this.detectAt = detectAt;
    this.life.abort();
    for (const [fail, requester] of this.serving)
      this.w.clock.at(this.failAt(requester), () => fail(new UnavailableError(`peer ${this.id} gone`)));
    this.serving.clear();
  }

  failAt(requester: string): number {
    const now = this.w.clock.now();
    return Math.max(
      now + this.w.params.latencyMs,
      this.detectAt.get(requester) ?? now + this.w.params.deadTimeoutMs,
    );
  }

  /** PeerTransport, requester side: a request to `peer` over the simulated network. */
  fetchChunk(
    peer: string,
    req: PeerChunkRequest,
    opts: { signal: AbortSignal; onStarted: () => void },
  ): Promise<Buffer | undefined> {
    const target = this.w.nodes.get(peer);
    const { clock, params } = this.w;
    return new Promise((resolve, reject) => {
      let settled = false;
      const inner = new AbortController();
      const settle = (f: () => void): void => {
        if (settled) return;
        settled = true;
        opts.signal.removeEventListener('abort', onAbort);
        deadline?.cancel();
        target?.serving.delete(fail);
        f();
      };
      const fail = (e: Error): void =>
        settle(() => {
          inner.abort();
          reject(e);
        });
      const onAbort = (): void => fail(new AbortedError(`peer ${peer}: aborted`));
      opts.signal.addEventListener('abort', onAbort, { once: true });
      let deadline: { cancel(): void } | undefined;
      if (target === undefined || !target.alive) {
        const at = target?.failAt(this.id) ?? clock.now() + params.deadTimeoutMs;
        deadline = clock.at(at, () => fail(new UnavailableError(`peer ${peer}: no answer (host gone)`)));
        return;
      }
      target.serving.set(fail, this.id);
      // A node that departs mid-request never answers; its `serving` callbacks fail the request instead.
      void target
        .serve(req, this, inner.signal, () => settled || opts.onStarted())
        .then(
          (bytes) => {
            if (target.alive) settle(() => resolve(bytes));
          },
          (e: unknown) => {
            if (target.alive) fail(e instanceof Error ? e : new UnavailableError(String(e)));
          },
        );
    });
  }

  /** Owner side (peer-server.ts's handle): runs on this node when a request from `from` arrives. */
  async serve(
    req: PeerChunkRequest,
    from: SimNode,
    signal: AbortSignal,
    onStarted: () => void,
  ): Promise<Buffer | undefined> {
    const { net, params } = this.w;
    await net.hop();
    if (!this.alive) throw new UnavailableError(`peer ${this.id} gone`);
    const headers = (): void => void this.w.clock.after(params.latencyMs, onStarted);
    let bytes = this.cache.get(req.chunkIndex);
    if (bytes === undefined) {
      if (req.cacheOnly === true) {
        await net.hop();
        return undefined;
      }
      headers(); // accepted: the requester stops hedging
      this.fetchedForPeers++;
      const mine: ChunkRequest = { index: this.w.index, chunk: req.chunkIndex, priority: 'demand' };
      this.onBehalf.add(mine);
      // The stream closing (requester gave up) or this node departing aborts the fetch, as in the server.
      const ac = new AbortController();
      const abort = (): void => ac.abort();
      signal.addEventListener('abort', abort, { once: true });
      this.life.signal.addEventListener('abort', abort, { once: true });
      try {
        bytes = await this.source.fetch(mine, ac.signal);
      } finally {
        signal.removeEventListener('abort', abort);
        this.life.signal.removeEventListener('abort', abort);
      }
    } else {
      headers();
    }
    await net.transfer(this.up, from.down, params.chunkBytes, signal);
    await from.process(signal);
    return bytes;
  }
}
