// PeerFirstSource with a fake transport and a manual clock: owner first, hedging after the budget, fallback on
// failures, bad bytes and unauthenticated answers penalised and never returned, stalling peers (silent, or
// accepting and then silent) penalised while the read goes on, self-owned chunks straight from the origin.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { Digest } from '../../src/image/digest.js';
import { PeerFirstSource, type PeerChunkRequest, type PeerTransport } from '../../src/p2p/peer-source.js';
import { owners } from '../../src/p2p/rendezvous.js';
import { FixedView, ManualClock, TableOrigin, testIndex } from './fakes.js';

const chunks = Array.from({ length: 64 }, () => randomBytes(4096));
const index = testIndex(chunks);
const table = new Map<Digest, Buffer>(index.chunks.map((c, i) => [c.digest, chunks[i]!]));
const SELF = 'self:1';
const PEERS = ['a:1', 'b:1', 'c:1'];

type Behaviour = 'ok' | 'slow-start' | 'hang' | 'accept-hang' | 'lie' | 'unauth' | 'fail' | 'missing';

class FakeTransport implements PeerTransport {
  calls: string[] = [];
  cacheOnly: boolean[] = [];
  constructor(
    private readonly behaviour: (peer: string) => Behaviour,
    private readonly clock: ManualClock,
  ) {}
  async fetchChunk(
    peer: string,
    req: PeerChunkRequest,
    opts: { signal: AbortSignal; onStarted: () => void },
  ) {
    this.calls.push(peer);
    this.cacheOnly.push(req.cacheOnly === true);
    const b = this.behaviour(peer);
    const bytes = table.get(req.chunkDigest)!;
    if (b === 'fail') throw new Error('connection reset');
    if (b === 'unauth') throw new IntegrityError(`peer ${peer}: HTTP 200 without a valid response MAC`);
    if (b === 'missing') return undefined;
    if (b === 'accept-hang') {
      opts.onStarted();
      await new Promise<void>((_, reject) =>
        opts.signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    }
    if (b === 'hang' || b === 'slow-start') {
      await new Promise<void>((resolve, reject) => {
        if (b === 'slow-start') this.clock.after(1000, resolve);
        opts.signal.addEventListener('abort', () => reject(new Error('aborted')));
      });
    }
    opts.onStarted();
    if (b === 'lie') {
      const bad = Buffer.from(bytes);
      bad[7]! ^= 0x10;
      return bad;
    }
    return bytes;
  }
}

function setup(behaviour: (peer: string) => Behaviour, originDelayMs = 0, stallAfterMs = 1000) {
  const clock = new ManualClock();
  const view = new FixedView(SELF, PEERS);
  const transport = new FakeTransport(behaviour, clock);
  const origin = new TableOrigin(table, () =>
    originDelayMs === 0 ? Promise.resolve() : new Promise((r) => clock.after(originDelayMs, () => r())),
  );
  const source = new PeerFirstSource({
    view,
    transport,
    origin,
    clock,
    log: silentLogger(),
    ownerCount: 2,
    hedgeAfterMs: 150,
    peerTimeoutMs: 5000,
    stallAfterMs,
  });
  return { clock, view, transport, origin, source };
}

/** A chunk whose top owner is `first` and second owner `second` (self excluded from both). */
function chunkOwnedBy(pred: (o: string[]) => boolean): number {
  const i = index.chunks.findIndex((c) => pred(owners(c.digest, [SELF, ...PEERS], 2)));
  expect(i).toBeGreaterThanOrEqual(0);
  return i;
}

const req = (chunk: number) => ({ index, chunk, priority: 'demand' as const });

describe('PeerFirstSource', () => {
  it('for a chunk it owns, asks only the runner-up for a cached copy, then the origin', async () => {
    const t = setup(() => 'missing');
    const i = chunkOwnedBy((o) => o[0] === SELF);
    await expect(t.source.fetch(req(i))).resolves.toEqual(chunks[i]);
    expect(t.transport.calls).toEqual([owners(index.chunks[i]!.digest, [SELF, ...PEERS], 2)[1]]);
    expect(t.transport.cacheOnly).toEqual([true]);
    expect(t.source.stats().registry.chunks).toBe(1);
  });

  it('churn: a chunk it took over comes from its previous owner (the runner-up), not the origin', async () => {
    const t = setup(() => 'ok');
    const i = chunkOwnedBy((o) => o[0] === SELF);
    await expect(t.source.fetch(req(i))).resolves.toEqual(chunks[i]);
    expect(t.origin.calls).toBe(0);
    expect(t.source.stats().peer.chunks).toBe(1);
  });

  it('asks the owner first and counts peer bytes', async () => {
    const t = setup(() => 'ok');
    const i = chunkOwnedBy((o) => o[0] !== SELF);
    await expect(t.source.fetch(req(i))).resolves.toEqual(chunks[i]);
    expect(t.transport.calls).toEqual([owners(index.chunks[i]!.digest, [SELF, ...PEERS], 1)[0]]);
    expect(t.origin.calls).toBe(0);
    expect(t.source.stats().peer).toEqual({ chunks: 1, bytes: 4096 });
  });

  it('hedges to the second owner after hedgeAfterMs when the first has not started', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF && o[1] !== SELF);
    const [first, second] = owners(index.chunks[i]!.digest, [SELF, ...PEERS], 2);
    const t = setup((p) => (p === first ? 'hang' : 'ok'));
    const p = t.source.fetch(req(i));
    await t.clock.advance(149);
    expect(t.transport.calls).toEqual([first]);
    await t.clock.advance(1);
    await expect(p).resolves.toEqual(chunks[i]);
    expect(t.transport.calls).toEqual([first, second]);
    expect(t.source.stats().hedges).toBe(1);
    expect(t.origin.calls).toBe(0);
  });

  it('races the registry when every owner is slow, and the first answer wins', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF && o[1] !== SELF);
    const t = setup(() => 'slow-start', 100);
    const p = t.source.fetch(req(i));
    await t.clock.advance(300); // two hedges: second owner at 150, registry at 300
    await t.clock.advance(100); // registry answers at 400, before the owners' 1000
    await expect(p).resolves.toEqual(chunks[i]);
    expect(t.origin.calls).toBe(1);
    expect(t.source.stats().hedges).toBe(2);
    expect(t.source.stats().registry.chunks).toBe(1);
  });

  it('moves on at once when the owner fails, and marks it down', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF && o[1] !== SELF);
    const [first] = owners(index.chunks[i]!.digest, [SELF, ...PEERS], 1);
    const t = setup((p) => (p === first ? 'fail' : 'ok'));
    await expect(t.source.fetch(req(i))).resolves.toEqual(chunks[i]);
    expect(t.clock.t).toBe(0);
    expect(t.view.down).toEqual([first]);
  });

  it("never returns a lying peer's bytes and penalises it", async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF);
    const [first] = owners(index.chunks[i]!.digest, [SELF, ...PEERS], 1);
    const t = setup((p) => (p === first ? 'lie' : 'ok'));
    await expect(t.source.fetch(req(i))).resolves.toEqual(chunks[i]);
    expect(t.view.penalised).toEqual([first]);
    expect(t.source.stats().badBytes).toBe(1);
  });

  it('refuses an unauthenticated answer, penalises the peer and reads from the next candidate', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF);
    const [first] = owners(index.chunks[i]!.digest, [SELF, ...PEERS], 1);
    const t = setup((p) => (p === first ? 'unauth' : 'ok'));
    await expect(t.source.fetch(req(i))).resolves.toEqual(chunks[i]);
    expect(t.view.penalised).toEqual([first]);
    expect(t.view.down).toEqual([]);
    expect(t.source.stats().badAuth).toBe(1);
  });

  it('a peer that never answers is penalised at the stall deadline even after the read was served', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF && o[1] !== SELF);
    const [first, second] = owners(index.chunks[i]!.digest, [SELF, ...PEERS], 2);
    const t = setup((p) => (p === first ? 'hang' : 'ok'));
    const p = t.source.fetch(req(i));
    await t.clock.advance(150);
    await expect(p).resolves.toEqual(chunks[i]); // the hedge to the second owner answered
    expect(t.transport.calls).toEqual([first, second]);
    expect(t.view.penalised).toEqual([]);
    await t.clock.advance(849);
    expect(t.view.penalised).toEqual([]);
    await t.clock.advance(1);
    expect(t.view.penalised).toEqual([first]);
    expect(t.source.stats().stalls).toBe(1);
  });

  it('a peer that answers late, after the read was served elsewhere, is not penalised', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF && o[1] !== SELF);
    const [first] = owners(index.chunks[i]!.digest, [SELF, ...PEERS], 1);
    const t = setup((p) => (p === first ? 'slow-start' : 'ok'), 10, 2000);
    const p = t.source.fetch(req(i));
    await t.clock.advance(200);
    await expect(p).resolves.toEqual(chunks[i]);
    await t.clock.advance(5000); // it answers at 1000 ms, inside the 2000 ms stall deadline
    expect(t.view.penalised).toEqual([]);
    expect(t.source.stats().stalls).toBe(0);
  });

  it('a peer that accepts and then stalls is penalised at peerTimeoutMs and the registry serves', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF && o[1] === SELF);
    const [first] = owners(index.chunks[i]!.digest, [SELF, ...PEERS], 1);
    const t = setup((p) => (p === first ? 'accept-hang' : 'ok'));
    const p = t.source.fetch(req(i));
    await t.clock.advance(4999);
    expect(t.origin.calls).toBe(0); // accepted: no hedge
    await t.clock.advance(1);
    await expect(p).resolves.toEqual(chunks[i]);
    expect(t.origin.calls).toBe(1);
    expect(t.view.penalised).toEqual([first]);
    expect(t.source.stats().stalls).toBe(1);
  });

  it('falls back to the registry when the owner does not have the chunk', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF && o[1] === SELF);
    const t = setup(() => 'missing');
    await expect(t.source.fetch(req(i))).resolves.toEqual(chunks[i]);
    expect(t.transport.calls.length).toBe(1);
    expect(t.origin.calls).toBe(1);
  });

  it('requests made on behalf of a peer go to the registry only', async () => {
    const t = setup(() => 'ok');
    const i = chunkOwnedBy((o) => o[0] !== SELF);
    await t.source.fetch(t.source.markOnBehalf(req(i)));
    expect(t.transport.calls).toEqual([]);
    expect(t.origin.calls).toBe(1);
  });

  it('an abort from the caller cancels every attempt', async () => {
    const i = chunkOwnedBy((o) => o[0] !== SELF);
    const t = setup(() => 'hang');
    const ac = new AbortController();
    const p = t.source.fetch(req(i), ac.signal);
    ac.abort();
    await expect(p).rejects.toThrow(/aborted/);
  });
});
