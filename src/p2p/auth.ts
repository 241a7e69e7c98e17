// Cluster-secret authentication of the peer protocol (wire version 2, docs/p2p-protocol.md): HMAC-SHA256 over
// requests bound to the target node, over response headers bound to the request's nonce, and over a chunk
// body's digest and length (a trailer). Checked in constant time; each request nonce accepted once per node
// inside the clock-skew window. The secret is never logged.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

export const AUTH_HEADER = 'x-ferry-auth';
/** Marks a response whose body is still being fetched (by the owner, from the registry). */
export const PENDING_HEADER = 'x-ferry-pending';
export const WIRE_VERSION = 'v2';

export interface PeerAuthOptions {
  secret: Buffer;
  /** Requests whose timestamp is further than this from our clock are rejected (and replays outside it). */
  windowMs?: number;
  now?: () => number;
  /** Nonces remembered at most (a hard memory bound; past it fresh requests are refused until some expire). */
  maxNonces?: number;
}

export type AuthFailure = 'missing' | 'malformed' | 'stale' | 'bad-mac' | 'replay' | 'overloaded';
export type AuthVerdict = { ok: true; nonce: string; self: string } | { ok: false; reason: AuthFailure };

/** What a response header MAC commits to. */
export interface ResponseFacts {
  /** The node that answers (the id the request was bound to). */
  server: string;
  nonce: string;
  status: number;
  pending: boolean;
}

/** What a chunk body's trailer MAC commits to. */
export interface BodyFacts {
  server: string;
  nonce: string;
  chunkDigest: string;
  length: number;
}

export class PeerAuth {
  private readonly secret: Buffer;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly maxNonces: number;
  /** nonce → expiry; a nonce is remembered as long as its timestamp could still pass the window check. */
  private readonly seen = new Map<string, number>();
  private nextSweep = 0;

  constructor(options: PeerAuthOptions) {
    if (options.secret.length < 16) {
      throw new InvalidArgumentError('p2p cluster secret must be at least 16 bytes');
    }
    this.secret = options.secret;
    this.windowMs = options.windowMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.maxNonces = options.maxNonces ?? 1 << 20;
  }

  /** The header value for a request to `target` (its peer id): `v2.<ms>.<nonce>.<hex mac>`, and its nonce. */
  signRequest(target: string, method: string, path: string): { header: string; nonce: string } {
    const ts = String(Math.round(this.now()));
    const nonce = randomBytes(12).toString('hex');
    return {
      header: `${WIRE_VERSION}.${ts}.${nonce}.${this.mac(['req', target, ts, nonce, method, path])}`,
      nonce,
    };
  }

  /** Checks a request against each id this node answers to; a MAC made for another node fails. */
  verifyRequest(
    header: string | undefined,
    method: string,
    path: string,
    selfIds: readonly string[],
  ): AuthVerdict {
    if (header === undefined || header === '') return { ok: false, reason: 'missing' };
    const parts = header.split('.');
    const [version, ts, nonce, mac] = parts;
    if (parts.length !== 4 || version !== WIRE_VERSION || ts === undefined || nonce === undefined)
      return { ok: false, reason: 'malformed' };
    if (!/^\d{1,16}$/.test(ts) || !/^[0-9a-f]{24}$/.test(nonce) || !isHexMac(mac))
      return { ok: false, reason: 'malformed' };
    const now = this.now();
    if (Math.abs(now - Number(ts)) > this.windowMs) return { ok: false, reason: 'stale' };
    const self = selfIds.find((id) => this.equal(this.mac(['req', id, ts, nonce, method, path]), mac));
    if (self === undefined) return { ok: false, reason: 'bad-mac' };
    this.sweep(now);
    if (this.seen.has(nonce)) return { ok: false, reason: 'replay' };
    if (this.seen.size >= this.maxNonces) return { ok: false, reason: 'overloaded' };
    this.seen.set(nonce, Number(ts) + this.windowMs);
    return { ok: true, nonce, self };
  }

  signResponse(f: ResponseFacts): string {
    return `${WIRE_VERSION}.${this.mac(['res', f.server, f.nonce, String(f.status), f.pending ? '1' : '0'])}`;
  }

  verifyResponse(header: string | undefined, f: ResponseFacts): boolean {
    const mac = versioned(header);
    return (
      mac !== undefined &&
      this.equal(this.mac(['res', f.server, f.nonce, String(f.status), f.pending ? '1' : '0']), mac)
    );
  }

  signBody(f: BodyFacts): string {
    return `${WIRE_VERSION}.${this.mac(['body', f.server, f.nonce, f.chunkDigest, String(f.length)])}`;
  }

  verifyBody(header: string | undefined, f: BodyFacts): boolean {
    const mac = versioned(header);
    return (
      mac !== undefined &&
      this.equal(this.mac(['body', f.server, f.nonce, f.chunkDigest, String(f.length)]), mac)
    );
  }

  /** Nonces remembered now (tests check that the cache empties as the window passes). */
  rememberedNonces(): number {
    this.sweep(this.now());
    return this.seen.size;
  }

  /** Fields are JSON-encoded so no field can run into the next. */
  private mac(fields: readonly string[]): string {
    return createHmac('sha256', this.secret)
      .update(`ferry-p2p/${WIRE_VERSION}`)
      .update(JSON.stringify(fields))
      .digest('hex');
  }

  private equal(wantHex: string, gotHex: string): boolean {
    return timingSafeEqual(Buffer.from(wantHex, 'hex'), Buffer.from(gotHex, 'hex'));
  }

  /** Forgets expired nonces, at most every quarter window (amortised; a replay inside the window is still seen). */
  private sweep(now: number): void {
    if (now < this.nextSweep && this.seen.size < this.maxNonces) return;
    this.nextSweep = now + this.windowMs / 4;
    for (const [n, until] of this.seen) if (until < now) this.seen.delete(n);
  }
}

function isHexMac(mac: string | undefined): mac is string {
  return mac !== undefined && /^[0-9a-f]{64}$/.test(mac);
}

/** The MAC of a `v2.<mac>` header value, or undefined when absent or of another wire version. */
function versioned(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const [version, mac, ...rest] = header.split('.');
  return version === WIRE_VERSION && rest.length === 0 && isHexMac(mac) ? mac : undefined;
}
