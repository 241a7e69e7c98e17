// The P2P simulation (bench/p2p-sim.ts): the real placement and PeerFirstSource on simulated time and links
// keep registry egress near one working set at N = 8 and 64, and every node completes, also under churn.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCENARIO, runScenario } from '../../bench/lib/sim-cluster.js';

const base = { ...DEFAULT_SCENARIO, chunks: 32 };

describe('p2p simulation', () => {
  it.each([8, 64])(
    'N = %i: the registry sends the working set about once; every node completes',
    async (n) => {
      const r = await runScenario({ ...base, nodes: n });
      expect(r.completed).toBe(n);
      expect(r.present).toBe(n);
      expect(r.readErrors).toBe(0);
      expect(r.egress).toBeGreaterThanOrEqual(1);
      expect(r.egress).toBeLessThanOrEqual(1.1);
      // Every chunk a node did not fetch from the registry came from a peer.
      expect(r.peerChunks + r.registryChunks).toBeGreaterThanOrEqual(n * base.chunks);
      // A whole working set over the 200 Mbit/s registry link takes at least chunks × 42 ms.
      expect(r.p50Ms).toBeGreaterThan((base.chunks * base.chunkBytes * 8) / (base.registryMbit * 1000));
    },
  );

  it.each([8, 64])(
    'N = %i with churn: nodes leave mid-run, fresh ones join, and all present complete',
    async (n) => {
      const calm = await runScenario({ ...base, nodes: n });
      const r = await runScenario({ ...base, nodes: n, churnFraction: 0.1, churnWindowMs: calm.p50Ms });
      expect(r.replaced).toBeGreaterThanOrEqual(1);
      expect(r.present).toBe(n);
      expect(r.completed).toBe(n);
      expect(r.readErrors).toBe(0);
      // Departures cost re-fetches of the chunks the leavers owned, not a registry pull per node.
      expect(r.egress).toBeLessThan(2);
    },
  );

  it('is deterministic for a seed', async () => {
    const a = await runScenario({ ...base, nodes: 16, churnFraction: 0.1, churnWindowMs: 500, seed: 7 });
    const b = await runScenario({ ...base, nodes: 16, churnFraction: 0.1, churnWindowMs: 500, seed: 7 });
    expect(b).toEqual({ ...a, cpuMs: b.cpuMs });
  });
});
