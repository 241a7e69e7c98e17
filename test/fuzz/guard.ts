// Fuzz harness: runs one case and fails on anything but a value or a FerryError, on a case slower than a bound,
// and on a case that grew ArrayBuffer memory past a bound (a size field claiming 2^50 must not allocate).
import { FerryError } from '../../src/errors.js';

export interface GuardOptions {
  /** Per-case wall-clock bound. */
  maxMs?: number;
  /** Per-case growth of external (ArrayBuffer) memory. */
  maxAllocBytes?: number;
}

/** Cases run per suite, printed at the end of each file for the report. */
export const caseCounts = new Map<string, number>();

export function countCase(suite: string): void {
  caseCounts.set(suite, (caseCounts.get(suite) ?? 0) + 1);
}

function check(e: unknown, t0: number, ab0: number, o: GuardOptions): void {
  if (e !== undefined && !(e instanceof FerryError)) {
    // Anything else (RangeError from a huge allocation, TypeError from a missing check) is a finding.
    throw e instanceof Error ? e : new Error(`non-Error thrown: ${JSON.stringify(e)}`);
  }
  const ms = performance.now() - t0;
  if (ms > (o.maxMs ?? 2000)) throw new Error(`case took ${Math.round(ms)} ms`);
  const grew = process.memoryUsage().arrayBuffers - ab0;
  if (grew > (o.maxAllocBytes ?? 128 << 20)) throw new Error(`case allocated ${grew} bytes of buffers`);
}

/** Runs `f`; returns its value or the FerryError it threw. */
export function guarded<T>(suite: string, f: () => T, o: GuardOptions = {}): T | FerryError {
  countCase(suite);
  const ab0 = process.memoryUsage().arrayBuffers;
  const t0 = performance.now();
  try {
    const v = f();
    check(undefined, t0, ab0, o);
    return v;
  } catch (e) {
    check(e, t0, ab0, o);
    return e as FerryError;
  }
}

export async function guardedAsync<T>(
  suite: string,
  f: () => Promise<T>,
  o: GuardOptions = {},
): Promise<T | FerryError> {
  countCase(suite);
  const ab0 = process.memoryUsage().arrayBuffers;
  const t0 = performance.now();
  try {
    const v = await f();
    check(undefined, t0, ab0, o);
    return v;
  } catch (e) {
    check(e, t0, ab0, o);
    return e as FerryError;
  }
}

export function reportCounts(file: string): void {
  const parts = [...caseCounts].map(([k, v]) => `${k}=${v}`);
  console.log(`fuzz ${file}: ${parts.join(' ')}`);
}
