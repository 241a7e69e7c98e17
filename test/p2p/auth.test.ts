// Cluster-secret request authentication: accepts a fresh signature once; rejects wrong secret, tampering,
// stale timestamps and replays.
import { describe, expect, it } from 'vitest';
import { PeerAuth } from '../../src/p2p/auth.js';

const secret = Buffer.from('0123456789abcdef-cluster');

describe('PeerAuth', () => {
  it('accepts a valid request once and rejects its replay', () => {
    const a = new PeerAuth({ secret });
    const h = a.sign('GET', '/chunk/x');
    expect(a.verify(h, 'GET', '/chunk/x')).toEqual({ ok: true });
    expect(a.verify(h, 'GET', '/chunk/x')).toEqual({ ok: false, reason: 'replay' });
  });

  it('rejects another secret, another path, missing and malformed headers', () => {
    const a = new PeerAuth({ secret });
    const other = new PeerAuth({ secret: Buffer.from('another-secret-of-16+') });
    expect(a.verify(other.sign('GET', '/p'), 'GET', '/p')).toEqual({ ok: false, reason: 'bad-mac' });
    expect(a.verify(a.sign('GET', '/p'), 'GET', '/q')).toEqual({ ok: false, reason: 'bad-mac' });
    expect(a.verify(undefined, 'GET', '/p')).toEqual({ ok: false, reason: 'missing' });
    expect(a.verify('1.2', 'GET', '/p')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('rejects timestamps outside the window', () => {
    let now = 1_000_000;
    const signer = new PeerAuth({ secret, now: () => now });
    const verifier = new PeerAuth({ secret, windowMs: 30_000, now: () => 1_031_000 });
    expect(verifier.verify(signer.sign('GET', '/p'), 'GET', '/p')).toEqual({ ok: false, reason: 'stale' });
    now += 20_000;
    expect(verifier.verify(signer.sign('GET', '/p'), 'GET', '/p')).toEqual({ ok: true });
  });

  it('refuses a short secret', () => {
    expect(() => new PeerAuth({ secret: Buffer.from('short') })).toThrow(/16 bytes/);
  });
});
