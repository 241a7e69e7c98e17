// The snapshot clock: wall time with microseconds, inside the millisecond Date.now() reports, never going back.
import { describe, expect, it } from 'vitest';
import { preciseNowMs } from '../../src/snapshot/clock.js';

describe('preciseNowMs', () => {
  it('has microseconds, stays within the wall-clock millisecond and does not go back', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 200; i++) {
      const before = Date.now();
      const t = preciseNowMs();
      const after = Date.now();
      expect(t).toBeGreaterThanOrEqual(before);
      expect(t).toBeLessThan(after + 1);
      if (seen.length > 0) expect(t).toBeGreaterThanOrEqual(seen[seen.length - 1]!);
      seen.push(t);
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 1)); // cross some ticks on the way
    }
    // Whole milliseconds (Date.now()) would make every value an integer.
    expect(seen.filter((t) => !Number.isInteger(t)).length).toBeGreaterThan(150);
    // Microsecond steps: two calls in a row a few microseconds apart are told apart.
    expect(new Set(seen).size).toBeGreaterThan(150);
  });
});
