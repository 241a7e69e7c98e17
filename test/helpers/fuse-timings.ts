// FUSE timings for tests that mount or serve a layer directly: the config's defaults, with what a test changes.
import { validateConfig } from '../../src/config/load.js';
import type { FuseTimings } from '../../src/config/resolve.js';

export function fuseTimings(o: Partial<FuseTimings> = {}): FuseTimings {
  return { ...validateConfig({}).fuseTimings, ...o };
}
