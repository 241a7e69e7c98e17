// Cluster-secret authentication of peer requests: HMAC-SHA256 over timestamp, nonce, method and path, checked
// in constant time, inside a small clock-skew window, each nonce accepted once. The secret is never logged.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

export const AUTH_HEADER = 'x-ferry-auth';

export interface PeerAuthOptions {
  secret: Buffer;
  /** Requests whose timestamp is further than this from our clock are rejected (and replays outside it). */
  windowMs?: number;
  now?: () => number;
}

export type AuthVerdict =
  { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'stale' | 'bad-mac' | 'replay' };

export class PeerAuth {
  private readonly secret: Buffer;
  private readonly windowMs: number;
  private readonly now: () => number;
  /** nonce → expiry; a nonce is remembered as long as its timestamp could still pass the window check. */
  private readonly seen = new Map<string, number>();

  constructor(options: PeerAuthOptions) {
    if (options.secret.length < 16) {
      throw new InvalidArgumentError('p2p cluster secret must be at least 16 bytes');
    }
    this.secret = options.secret;
    this.windowMs = options.windowMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /** The header value for a request: `<ms>.<nonce>.<hex mac>`. */
  sign(method: string, path: string): string {
    const ts = String(Math.round(this.now()));
    const nonce = randomBytes(12).toString('hex');
    return `${ts}.${nonce}.${this.mac(ts, nonce, method, path)}`;
  }

  verify(header: string | undefined, method: string, path: string): AuthVerdict {
    if (header === undefined || header === '') return { ok: false, reason: 'missing' };
    const parts = header.split('.');
    const [ts, nonce, mac] = parts;
    if (parts.length !== 3 || ts === undefined || nonce === undefined || mac === undefined)
      return { ok: false, reason: 'malformed' };
    if (!/^\d{1,16}$/.test(ts) || !/^[0-9a-f]{24}$/.test(nonce) || !/^[0-9a-f]{64}$/.test(mac))
      return { ok: false, reason: 'malformed' };
    const now = this.now();
    if (Math.abs(now - Number(ts)) > this.windowMs) return { ok: false, reason: 'stale' };
    const want = Buffer.from(this.mac(ts, nonce, method, path), 'hex');
    if (!timingSafeEqual(want, Buffer.from(mac, 'hex'))) return { ok: false, reason: 'bad-mac' };
    this.expire(now);
    if (this.seen.has(nonce)) return { ok: false, reason: 'replay' };
    this.seen.set(nonce, Number(ts) + this.windowMs);
    return { ok: true };
  }

  private mac(ts: string, nonce: string, method: string, path: string): string {
    return createHmac('sha256', this.secret).update(`${ts}.${nonce}.${method}.${path}`).digest('hex');
  }

  private expire(now: number): void {
    if (this.seen.size < 1024) return;
    for (const [n, until] of this.seen) if (until < now) this.seen.delete(n);
  }
}
