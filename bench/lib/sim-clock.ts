// The simulation's virtual time: an event queue implementing src/p2p/clock.ts's Clock, so the real p2p code
// runs on simulated time. Between instants it lets promise chains settle, so async code sees a consistent now.
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import type { Clock, TimerHandle } from '../../src/p2p/clock.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  live: boolean;
}

const earlier = (a: Timer, b: Timer): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

export class SimClock implements Clock {
  private t = 0;
  private seq = 0;
  private heap: Timer[] = [];
  /** Cancelled timers still in the heap (hedge and timeout timers are mostly cancelled; they hold closures). */
  private cancelled = 0;
  /** Events fired so far (cancelled timers excluded). */
  fired = 0;

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): TimerHandle {
    return this.at(this.t + Math.max(0, ms), fn);
  }

  at(time: number, fn: () => void): TimerHandle {
    const timer: Timer = { at: Math.max(time, this.t), seq: this.seq++, fn, live: true };
    this.push(timer);
    return {
      cancel: () => {
        if (!timer.live) return;
        timer.live = false;
        if (++this.cancelled > 4096 && this.cancelled * 2 > this.heap.length) this.compact();
      },
    };
  }

  /**
   * Fires events in time order until `done()` holds, nothing is left, or time passes `limitMs`. All events of
   * one instant run together, then the microtask queue drains (one macrotask hop) before time moves on.
   */
  async run(done: () => boolean, limitMs: number): Promise<void> {
    await nextMacrotask();
    while (!done()) {
      const top = this.popLive();
      if (top === undefined || top.at > limitMs) return;
      this.t = top.at;
      this.fire(top);
      for (let next = this.peekLive(); next !== undefined && next.at <= this.t; next = this.peekLive()) {
        this.pop();
        this.fire(next);
      }
      await nextMacrotask();
    }
  }

  private fire(x: Timer): void {
    x.live = false; // fired: a later cancel() must not count it as a dead heap entry
    this.fired++;
    x.fn();
  }

  private peekLive(): Timer | undefined {
    while (this.heap.length > 0 && !this.heap[0]!.live) {
      this.pop();
      this.cancelled--;
    }
    return this.heap[0];
  }

  /** Drops cancelled timers so their closures can be collected; a sorted array is a valid heap. */
  private compact(): void {
    this.heap = this.heap.filter((x) => x.live).sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.cancelled = 0;
  }

  private popLive(): Timer | undefined {
    return this.peekLive() === undefined ? undefined : this.pop();
  }

  private push(x: Timer): void {
    const h = this.heap;
    let i = h.length;
    h.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!earlier(x, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = x;
  }

  private pop(): Timer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && earlier(h[r]!, h[l]!) ? r : l;
      if (!earlier(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }
}
