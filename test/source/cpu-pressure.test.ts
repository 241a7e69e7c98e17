// CpuPressure: prefetch pauses while a reader's decode waits, narrows as the event loop gets busy, and stays at
// one fetch while decode work piles up; real event-loop utilisation rises under a busy loop.
import { describe, expect, it } from 'vitest';
import { CpuPressure } from '../../src/source/cpu-pressure.js';

function fakePool(queued: number, queuedDemand: number) {
  return { size: 2, stats: () => ({ queued, queuedDemand }) };
}

describe('CpuPressure', () => {
  it('allows full width on an idle loop, fewer as it gets busy, one when saturated', () => {
    let u = 0.1;
    const p = new CpuPressure({ utilisation: () => u, low: 0.5, high: 0.9 });
    expect(p.allowed(8)).toBe(8);
    u = 0.7;
    expect(p.allowed(8)).toBe(4);
    u = 0.89;
    expect(p.allowed(8)).toBe(1);
    u = 1;
    expect(p.allowed(8)).toBe(1);
  });

  it("pauses while a reader's decode job is queued, and narrows to one while decode work piles up", () => {
    expect(new CpuPressure({ utilisation: () => 0, pool: fakePool(1, 1) }).allowed(8)).toBe(0);
    expect(new CpuPressure({ utilisation: () => 0, pool: fakePool(4, 0) }).allowed(8)).toBe(1);
    expect(new CpuPressure({ utilisation: () => 0, pool: fakePool(3, 0) }).allowed(8)).toBe(8);
  });

  it('measures the real event loop: a busy loop reads as high utilisation', async () => {
    const p = new CpuPressure({ sampleMs: 50 });
    await new Promise((r) => setTimeout(r, 60));
    p.allowed(8); // starts a fresh window
    const until = performance.now() + 120;
    while (performance.now() < until); // keep the loop busy for the whole window
    expect(p.utilisation).toBeGreaterThan(0.8);
    expect(p.allowed(8)).toBe(1);
  });
});
