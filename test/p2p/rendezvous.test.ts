// Rendezvous hashing: every node agrees, load is balanced, and membership changes move only their share.
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { owners, rankPeers } from '../../src/p2p/rendezvous.js';

const peers = Array.from({ length: 10 }, (_, i) => `10.234.0.${i + 2}:7420`);
const keys = Array.from({ length: 20_000 }, (_, i) => sha256(`chunk-${i}`));

describe('rendezvous hashing', () => {
  it('is independent of the order peers are listed in', () => {
    const shuffled = [...peers].reverse();
    for (const k of keys.slice(0, 500)) expect(owners(k, shuffled, 3)).toEqual(owners(k, peers, 3));
  });

  it('owners() agrees with the full ranking', () => {
    for (const k of keys.slice(0, 500)) expect(owners(k, peers, 2)).toEqual(rankPeers(k, peers).slice(0, 2));
  });

  it('balances keys across peers (each within 10% of the mean)', () => {
    const count = new Map<string, number>();
    for (const k of keys) {
      const o = owners(k, peers, 1)[0]!;
      count.set(o, (count.get(o) ?? 0) + 1);
    }
    const mean = keys.length / peers.length;
    for (const p of peers) expect(Math.abs((count.get(p) ?? 0) - mean) / mean).toBeLessThan(0.1);
  });

  it('a peer leaving moves only the keys it owned; one joining takes only ~1/(n+1)', () => {
    const gone = peers[3]!;
    const fewer = peers.filter((p) => p !== gone);
    let moved = 0;
    for (const k of keys) {
      const before = owners(k, peers, 1)[0];
      const after = owners(k, fewer, 1)[0];
      if (before !== after) {
        moved++;
        expect(before).toBe(gone);
      }
    }
    expect(moved / keys.length).toBeGreaterThan(0.07);
    expect(moved / keys.length).toBeLessThan(0.13);
    const more = [...peers, '10.234.0.99:7420'];
    let taken = 0;
    for (const k of keys) if (owners(k, more, 1)[0] !== owners(k, peers, 1)[0]) taken++;
    expect(taken / keys.length).toBeLessThan(0.12);
  });
});
