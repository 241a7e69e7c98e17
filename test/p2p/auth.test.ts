// Cluster-secret authentication (wire v2): a request MAC is bound to its target node and accepted once by it;
// another node refuses it; wrong secret, tampering, stale timestamps, replays and old-version headers are
// refused; the replay cache forgets nonces once the window has passed and is bounded; response and body MACs
// are bound to the request's nonce, the answering node, the status, and the chunk's digest and length.
import { describe, expect, it } from 'vitest';
import { PeerAuth } from '../../src/p2p/auth.js';

const secret = Buffer.from('0123456789abcdef-cluster');
const A = '10.0.0.1:7070';
const B = '10.0.0.2:7070';

describe('PeerAuth requests', () => {
  it('accepts a valid request once at its target and rejects its replay', () => {
    const a = new PeerAuth({ secret });
    const { header, nonce } = a.signRequest(A, 'GET', '/chunk/x');
    expect(a.verifyRequest(header, 'GET', '/chunk/x', [A])).toEqual({ ok: true, nonce, self: A });
    expect(a.verifyRequest(header, 'GET', '/chunk/x', [A])).toEqual({ ok: false, reason: 'replay' });
  });

  it('binds the MAC to the target: a request captured on its way to A is refused by B', () => {
    const nodeA = new PeerAuth({ secret });
    const nodeB = new PeerAuth({ secret });
    const { header } = new PeerAuth({ secret }).signRequest(A, 'GET', '/healthz');
    expect(nodeB.verifyRequest(header, 'GET', '/healthz', [B])).toEqual({ ok: false, reason: 'bad-mac' });
    expect(nodeA.verifyRequest(header, 'GET', '/healthz', [A]).ok).toBe(true);
    // A node answering to several ids accepts a request for any of them, and says which.
    const both = new PeerAuth({ secret }).signRequest(B, 'GET', '/healthz');
    expect(nodeB.verifyRequest(both.header, 'GET', '/healthz', [A, B])).toMatchObject({ ok: true, self: B });
  });

  it('rejects another secret, another path, missing, malformed and version-1 headers', () => {
    const a = new PeerAuth({ secret });
    const other = new PeerAuth({ secret: Buffer.from('another-secret-of-16+') });
    const sign = (p: PeerAuth, path: string) => p.signRequest(A, 'GET', path).header;
    expect(a.verifyRequest(sign(other, '/p'), 'GET', '/p', [A])).toEqual({ ok: false, reason: 'bad-mac' });
    expect(a.verifyRequest(sign(a, '/p'), 'GET', '/q', [A])).toEqual({ ok: false, reason: 'bad-mac' });
    expect(a.verifyRequest(undefined, 'GET', '/p', [A])).toEqual({ ok: false, reason: 'missing' });
    expect(a.verifyRequest('1.2', 'GET', '/p', [A])).toEqual({ ok: false, reason: 'malformed' });
    const v1 = sign(a, '/p').replace(/^v2\./, ''); // `<ms>.<nonce>.<mac>`: the old, unbound format
    expect(a.verifyRequest(v1, 'GET', '/p', [A])).toEqual({ ok: false, reason: 'malformed' });
  });

  it('rejects timestamps outside the window', () => {
    let now = 1_000_000;
    const signer = new PeerAuth({ secret, now: () => now });
    const verifier = new PeerAuth({ secret, windowMs: 30_000, now: () => 1_031_000 });
    const sign = () => signer.signRequest(A, 'GET', '/p').header;
    expect(verifier.verifyRequest(sign(), 'GET', '/p', [A])).toEqual({ ok: false, reason: 'stale' });
    now += 20_000;
    expect(verifier.verifyRequest(sign(), 'GET', '/p', [A]).ok).toBe(true);
  });

  it('remembers nonces only within the window, and at most maxNonces of them', () => {
    let now = 1_000_000;
    const a = new PeerAuth({ secret, windowMs: 30_000, now: () => now, maxNonces: 3 });
    const headers = [0, 1, 2, 3].map(() => a.signRequest(A, 'GET', '/p').header);
    for (const h of headers.slice(0, 3)) expect(a.verifyRequest(h, 'GET', '/p', [A]).ok).toBe(true);
    expect(a.verifyRequest(headers[3], 'GET', '/p', [A])).toEqual({ ok: false, reason: 'overloaded' });
    expect(a.rememberedNonces()).toBe(3);
    now += 30_001; // past the window: the old requests are stale anyway, so their nonces can go
    expect(a.rememberedNonces()).toBe(0);
    expect(a.verifyRequest(headers[0], 'GET', '/p', [A])).toEqual({ ok: false, reason: 'stale' });
    expect(a.verifyRequest(a.signRequest(A, 'GET', '/p').header, 'GET', '/p', [A]).ok).toBe(true);
  });

  it('refuses a short secret', () => {
    expect(() => new PeerAuth({ secret: Buffer.from('short') })).toThrow(/16 bytes/);
  });
});

describe('PeerAuth responses', () => {
  const a = new PeerAuth({ secret });
  const facts = { server: A, nonce: 'ab'.repeat(12), status: 200, pending: false };
  const body = { server: A, nonce: 'ab'.repeat(12), chunkDigest: `sha256:${'0'.repeat(64)}`, length: 4096 };

  it('checks a response MAC against the request nonce, the node, the status and the pending flag', () => {
    const h = a.signResponse(facts);
    expect(a.verifyResponse(h, facts)).toBe(true);
    expect(a.verifyResponse(h, { ...facts, nonce: 'cd'.repeat(12) })).toBe(false);
    expect(a.verifyResponse(h, { ...facts, server: B })).toBe(false);
    expect(a.verifyResponse(h, { ...facts, status: 404 })).toBe(false);
    expect(a.verifyResponse(h, { ...facts, pending: true })).toBe(false);
    expect(a.verifyResponse(undefined, facts)).toBe(false);
    expect(
      a.verifyResponse(new PeerAuth({ secret: Buffer.from('x'.repeat(16)) }).signResponse(facts), facts),
    ).toBe(false);
  });

  it("checks a body MAC against the chunk's digest and length", () => {
    const h = a.signBody(body);
    expect(a.verifyBody(h, body)).toBe(true);
    expect(a.verifyBody(h, { ...body, length: 4095 })).toBe(false);
    expect(a.verifyBody(h, { ...body, chunkDigest: `sha256:${'1'.repeat(64)}` })).toBe(false);
    expect(a.verifyBody(`${h}.x`, body)).toBe(false);
  });
});
