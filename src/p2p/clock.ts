// The time source p2p logic runs on: real timers in Ferry, a virtual clock in the simulation (bench/p2p-sim.ts).

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; real timers are unref'd so they never keep the process alive. */
  after(ms: number, fn: () => void): TimerHandle;
}

export const realClock: Clock = {
  now: () => performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
