// PeerFirstSource: the ChunkSource that sits where the origin would (composeSource's originOverride). On a miss
// it asks the chunk's rendezvous owner; the owner fetches from the registry once for the whole cluster. If the
// owner has not started answering within hedgeAfterMs, the next owner (or the registry) is raced; the first
// verified answer wins and the rest are aborted. Peers are untrusted: bad bytes, unauthenticated answers and
// stalls penalise the peer.
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
  /** An accepted peer request that has not delivered within this long is abandoned and the peer penalised. */
  peerTimeoutMs: number;
  /**
   * A peer that has not answered a request's headers within this long is stalling: it is penalised (kept
   * watched this long even when another candidate already won). Default and upper bound: peerTimeoutMs.
   */
  stallAfterMs?: number;
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
  /** Answers refused for a missing or wrong response MAC. */
  badAuth: number;
  /** Requests a peer accepted (or took) and then stalled on. */
  stalls: number;
}

interface Attempt {
  /** Undefined for the registry. */
  readonly peer?: string;
  /** The peer has answered (authenticated headers). */
  started: boolean;
  settled: boolean;
  stop(): void;
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
    badAuth: 0,
    stalls: 0,
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
    const stallAfterMs = Math.min(this.o.stallAfterMs ?? this.o.peerTimeoutMs, this.o.peerTimeoutMs);
    return new Promise<Buffer>((resolve, reject) => {
      const attempts = new Set<Attempt>();
      let next = 0;
      let done = false;
      /** Ends the race. A peer that has not even answered stays watched until its stall deadline. */
      const finish = (everything: boolean): void => {
        done = true;
        signal?.removeEventListener('abort', onAbort);
        for (const a of attempts) if (everything || a.peer === undefined || a.started) a.stop();
      };
      const onAbort = (): void => {
        if (done) return;
        finish(true);
        reject(new AbortedError(`${describeChunk(req)}: aborted`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });

      const launch = (): void => {
        if (done || next >= plan.length) return;
        const target = plan[next++]!;
        const ac = new AbortController();
        const timers: TimerHandle[] = [];
        const a: Attempt = {
          ...(target !== ORIGIN ? { peer: peerOf(target) } : {}),
          started: false,
          settled: false,
          stop: () => {
            for (const t of timers) t.cancel();
            attempts.delete(a);
            ac.abort();
          },
        };
        attempts.add(a);
        let advanced = false;
        const advance = (): void => {
          if (advanced) return;
          advanced = true;
          launch();
        };
        const fail = (e: unknown): void => {
          if (a.settled) return;
          a.settled = true;
          a.stop();
          if (done) return;
          advance();
          if (attempts.size === 0) {
            finish(true);
            reject(e instanceof Error ? e : new UnavailableError(String(e)));
          }
        };
        /** Accepted and then silent, or never answering: avoided like a peer that lies. */
        const stalled = (peer: string, what: string): void => {
          if (a.settled) return;
          this.counters.stalls++;
          this.o.view.penalise(peer, what);
          fail(new UnavailableError(`peer ${peer}: ${what}`));
        };
        if (a.peer !== undefined) {
          const peer = a.peer;
          timers.push(
            clock.after(this.o.hedgeAfterMs, () => {
              if (a.started || done || advanced) return;
              this.counters.hedges++;
              advance();
            }),
            clock.after(stallAfterMs, () => {
              if (!a.started) stalled(peer, `stalled: no answer in ${stallAfterMs} ms`);
            }),
            clock.after(this.o.peerTimeoutMs, () =>
              stalled(peer, `stalled: accepted but no bytes in ${this.o.peerTimeoutMs} ms`),
            ),
          );
        }
        const attempt =
          a.peer === undefined
            ? this.fromOrigin(req, ac.signal)
            : this.fromPeer(
                a.peer,
                req,
                ac.signal,
                () => {
                  a.started = true;
                  if (done) a.stop(); // it answered after all: not stalling, just too late
                },
                typeof target !== 'string',
              );
        attempt.then((bytes) => {
          if (a.settled) return;
          a.settled = true;
          a.stop();
          if (done) return;
          finish(false);
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
      if (signal.aborted) throw e;
      if (e instanceof IntegrityError) {
        // An answer without valid MACs: a node without the secret, or a tampered path. Never used.
        this.counters.badAuth++;
        this.o.view.penalise(peer, e.message);
      } else {
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
      this.o.view.penalise(peer, 'sent bad bytes');
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
