// The wall clock snapshot timestamps are taken from, with microseconds: containerd stamps snapshots in
// nanoseconds and its clients bracket an Update with their own clock, which whole milliseconds fall behind.

/** Wall time (ms) at a millisecond tick of Date.now() and the monotonic clock (ns) read right at it. */
interface Anchor {
  wallMs: number;
  hrNs: bigint;
}

let anchor: Anchor | undefined;

/** Waits for Date.now() to tick (at most 1 ms of spinning): at the tick the wall time is a whole millisecond. */
function anchorAtTick(): Anchor {
  const start = Date.now();
  let wallMs = start;
  while (wallMs === start) wallMs = Date.now();
  return { wallMs, hrNs: process.hrtime.bigint() };
}

function fromAnchor(a: Anchor, hrNs: bigint): number {
  return a.wallMs + Number(hrNs - a.hrNs) / 1e6;
}

/**
 * Milliseconds since the epoch with a microsecond fraction, never outside the millisecond Date.now() reports:
 * the monotonic clock gives the fraction, and is re-anchored when the wall clock drifts or steps away from it.
 */
export function preciseNowMs(): number {
  anchor ??= anchorAtTick();
  const wallMs = Date.now();
  let ms = fromAnchor(anchor, process.hrtime.bigint());
  // Read after wallMs, so ms < wallMs means the anchor lags; ms past the next tick is ahead unless it just ticked.
  if (ms < wallMs || (ms >= wallMs + 1 && ms >= Date.now() + 1)) {
    anchor = anchorAtTick();
    ms = fromAnchor(anchor, process.hrtime.bigint());
  }
  return Math.round(ms * 1000) / 1000;
}
