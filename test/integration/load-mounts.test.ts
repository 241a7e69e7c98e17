// Load: 64 concurrent readers over 10 images, each served by its own `ferry mount` with prefetch and a
// background full fetch running, for a bounded time. No error, no wrong byte, no deadlock (the phase ends
// in time); p99 of cached reads and each mount's RSS are printed (bench/load.ts runs the heavy version).
import { describe, expect, it } from 'vitest';
import { runLoad } from '../load/load-run.js';

describe('load: 64 readers over 10 mounted images', () => {
  it('serves every read correctly while prefetch and a background full fetch run', async () => {
    const r = await runLoad({
      images: 10,
      readers: 64,
      durationMs: 15_000,
      smallFiles: 400,
      bigFileBytes: 2 << 20,
      background: 'all',
      log: (l) => console.log(`load: ${l}`),
    });
    const mb = (kb: number): number => Math.round(kb / 1024);
    console.log(
      `load: warm ${r.warm.reads} reads p99 ${r.warm.p99Ms.toFixed(1)} ms; cached ${r.measure.reads} reads ` +
        `(${r.direct ? 'O_DIRECT' : 'page cache'}) p50 ${r.measure.p50Ms.toFixed(2)} ms p99 ${r.measure.p99Ms.toFixed(2)} ms ` +
        `max ${r.measure.maxMs.toFixed(1)} ms; RSS per mount ${r.rssKb.map(mb).join('/')} MiB ` +
        `(sum ${mb(r.rssKb.reduce((a, b) => a + b, 0))} MiB, peak ${mb(Math.max(...r.hwmKb))} MiB); ` +
        `mount ${Math.round(Math.max(...r.mountMs))} ms max; wall ${Math.round(r.wallMs / 1000)} s`,
    );
    expect(r.warm.errors).toEqual([]);
    expect(r.warm.mismatches).toEqual([]);
    expect(r.measure.errors).toEqual([]);
    expect(r.measure.mismatches).toEqual([]);
    expect(r.warm.reads).toBeGreaterThan(10 * 150);
    expect(r.measure.reads).toBeGreaterThan(1000); // readers kept making progress: no deadlock
    expect(r.measure.maxMs).toBeLessThan(10_000);
  }, 300_000);
});
