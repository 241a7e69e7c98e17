// PeerFirstSource: the ChunkSource that sits where the origin would (composeSource's originOverride). On a miss
// it asks the chunk's rendezvous owner; the owner fetches from the registry once for the whole cluster. If the
// owner has not started answering within hedgeAfterMs, the next owner (or the registry) is raced; the first
// verified answer wins and the rest are aborted. Peers are untrusted: bad bytes penalise the peer.
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Digest } from '../image/digest.js';
import { digestAlgorithm } from '../image/digest.js';
import { AbortedError, IntegrityError, NotFoundError, UnavailableError, isFerryError } from '../errors.js';
import { chunkOf, describeChunk, type ChunkRequest, type ChunkSource } from '../source/chunk-source.js';
import type { TierCounter } from '../source/origin-source.js';
import type { Clock, TimerHandle } from './clock.js';
import type { PeerView } from './membership.js';
import { owners } from './rendezvous.js';

/** What a requester tells the owner: the chunk by digest, and where it lives so the owner can fetch it. */
export interface PeerChunkRequest {
  readonly chunkDigest: Digest;
  readonly layerDigest: Digest;
  readonly chunkIndex: number;
  /** Answer only from the peer's cache (no fetch on our behalf): asked of the previous owner after churn. */
  readonly cacheOnly?: boolean;
}

export interface PeerTransport {
  /**
   * The chunk's bytes from `peer` (unverified), or undefined when the peer cannot serve it. `onStarted` fires
   * when the peer has accepted the request (it holds the chunk or is fetching it for us).
   */
  fetchChunk(
    peer: string,
    req: PeerChunkRequest,
    opts: { signal: AbortSignal; onStarted: () => void },
  ): Promise<Buffer | undefined>;
}

export interface PeerFirstSourceOptions {
  view: PeerView;
  transport: PeerTransport;
  /** The registry path (an OriginSource in Ferry). */
  origin: ChunkSource;
  clock: Clock;
  log: Logger;
  /** Owners per chunk; the requester tries them in rank order before the registry. */
  ownerCount: number;
  /** Start the next candidate when the current one has not accepted within this long. */
  hedgeAfterMs: number;
  /** An accepted peer request that has not delivered within this long is abandoned for the next candidate. */
  peerTimeoutMs: number;
  /** Requests the peer server makes for other nodes (shared by a node's sources): registry only. */
  onBehalf?: WeakSet<ChunkRequest>;
}

export interface PeerFirstStats {
  peer: TierCounter;
  registry: TierCounter;
  hedges: number;
  peerFailures: number;
  peerNotFound: number;
  badBytes: number;
}

const ORIGIN = Symbol('origin');
type Target = string | { readonly cacheOnly: string } | typeof ORIGIN;

export class PeerFirstSource implements ChunkSource {
  private readonly o: PeerFirstSourceOptions;
  private readonly onBehalf: WeakSet<ChunkRequest>;
  private readonly counters: PeerFirstStats = {
    peer: { chunks: 0, bytes: 0 },
    registry: { chunks: 0, bytes: 0 },
    hedges: 0,
    peerFailures: 0,
    peerNotFound: 0,
    badBytes: 0,
  };

  constructor(options: PeerFirstSourceOptions) {
    this.o = options;
    this.onBehalf = options.onBehalf ?? new WeakSet();
  }

  /** Marks a request the peer server makes for another node: it goes to the registry, never to a peer. */
  markOnBehalf(req: ChunkRequest): ChunkRequest {
    this.onBehalf.add(req);
    return req;
  }

  /**
   * The candidates for a chunk, in order: owners ranked above self, then the registry. When self is the top
   * owner, the runner-up is first asked for a cached copy only: after a node joins, the runner-up for the keys
   * it took over is exactly their previous owner, so churn does not send them back to the registry.
   */
  plan(digest: Digest): Target[] {
    const out: Target[] = [];
    const ranked = owners(digest, this.o.view.live(), Math.max(2, this.o.ownerCount));
    if (ranked[0] === this.o.view.self && ranked[1] !== undefined) return [{ cacheOnly: ranked[1] }, ORIGIN];
    for (const p of ranked.slice(0, this.o.ownerCount)) {
      if (p === this.o.view.self) break;
      out.push(p);
    }
    out.push(ORIGIN);
    return out;
  }

  fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    const chunk = chunkOf(req);
    if (this.onBehalf.has(req)) return this.fromOrigin(req, signal);
    const plan = this.plan(chunk.digest);
    if (plan.length === 1) return this.fromOrigin(req, signal);
    return this.race(req, plan, signal);
  }

  promote(req: ChunkRequest): void {
    this.o.origin.promote?.(req);
  }

  stats(): PeerFirstStats {
    const c = this.counters;
    return { ...c, peer: { ...c.peer }, registry: { ...c.registry } };
  }

  private race(req: ChunkRequest, plan: Target[], signal: AbortSignal | undefined): Promise<Buffer> {
    const { clock } = this.o;
    return new Promise<Buffer>((resolve, reject) => {
      const running = new Set<AbortController>();
      const timers = new Set<TimerHandle>();
      let next = 0;
      let done = false;
      const finish = (): void => {
        done = true;
        for (const t of timers) t.cancel();
        for (const ac of running) ac.abort();
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        if (done) return;
        finish();
        reject(new AbortedError(`${describeChunk(req)}: aborted`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });

      const launch = (): void => {
        if (done || next >= plan.length) return;
        const target = plan[next++]!;
        const ac = new AbortController();
        running.add(ac);
        let started = false;
        let advanced = false;
        let settled = false;
        const advance = (): void => {
          if (advanced) return;
          advanced = true;
          launch();
        };
        const fail = (e: unknown): void => {
          if (settled) return;
          settled = true;
          running.delete(ac);
          if (done) return;
          advance();
          if (running.size === 0) {
            finish();
            reject(e instanceof Error ? e : new UnavailableError(String(e)));
          }
        };
        if (target !== ORIGIN) {
          timers.add(
            clock.after(this.o.hedgeAfterMs, () => {
              if (started || done || advanced) return;
              this.counters.hedges++;
              advance();
            }),
          );
          timers.add(
            clock.after(this.o.peerTimeoutMs, () => {
              if (settled || done) return;
              ac.abort();
              fail(new UnavailableError(`peer ${peerOf(target)}: no answer in ${this.o.peerTimeoutMs} ms`));
            }),
          );
        }
        const attempt =
          target === ORIGIN
            ? this.fromOrigin(req, ac.signal)
            : this.fromPeer(
                peerOf(target),
                req,
                ac.signal,
                () => {
                  started = true;
                },
                typeof target !== 'string',
              );
        attempt.then((bytes) => {
          if (settled) return;
          settled = true;
          running.delete(ac);
          if (done) return;
          finish();
          resolve(bytes);
        }, fail);
      };
      launch();
    });
  }

  private async fromOrigin(req: ChunkRequest, signal: AbortSignal | undefined): Promise<Buffer> {
    const bytes = await this.o.origin.fetch(req, signal);
    this.counters.registry.chunks++;
    this.counters.registry.bytes += bytes.length;
    return bytes;
  }

  private async fromPeer(
    peer: string,
    req: ChunkRequest,
    signal: AbortSignal,
    onStarted: () => void,
    cacheOnly = false,
  ): Promise<Buffer> {
    const chunk = chunkOf(req);
    let bytes: Buffer | undefined;
    try {
      bytes = await this.o.transport.fetchChunk(
        peer,
        {
          chunkDigest: chunk.digest,
          layerDigest: req.index.layerDigest,
          chunkIndex: req.chunk,
          ...(cacheOnly ? { cacheOnly } : {}),
        },
        { signal, onStarted },
      );
    } catch (e) {
      if (!signal.aborted) {
        this.counters.peerFailures++;
        this.o.view.markDown(peer, isFerryError(e) ? e.message : String(e));
      }
      throw e;
    }
    if (bytes === undefined) {
      this.counters.peerNotFound++;
      throw new NotFoundError(`peer ${peer} does not have ${describeChunk(req)}`);
    }
    const alg = digestAlgorithm(chunk.digest);
    const actual = `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
    if (bytes.length !== chunk.size || actual !== chunk.digest) {
      this.counters.badBytes++;
      this.o.view.penalise(peer);
      throw new IntegrityError(`peer ${peer} sent bad bytes for ${describeChunk(req)}`);
    }
    this.counters.peer.chunks++;
    this.counters.peer.bytes += bytes.length;
    return bytes;
  }
}

function peerOf(target: string | { readonly cacheOnly: string }): string {
  return typeof target === 'string' ? target : target.cacheOnly;
}
