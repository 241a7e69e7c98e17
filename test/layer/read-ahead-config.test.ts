// The `[readAhead]` config section: defaults match the read-ahead module's, and bad windows are refused.
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { DEFAULT_READ_AHEAD_SETTINGS } from '../../src/layer/read-ahead.js';

describe('[readAhead] config', () => {
  it('defaults to on, with the module defaults and a 64 MiB memory bound', () => {
    const c = validateConfig({});
    expect(c.readAhead).toEqual({
      enabled: true,
      memoryBytes: 64 * 1024 * 1024,
      ...DEFAULT_READ_AHEAD_SETTINGS,
    });
  });

  it('refuses a max window below the min window, and unknown keys', () => {
    expect(() => validateConfig({ readAhead: { minWindowBytes: 8 << 20, maxWindowBytes: 4 << 20 } })).toThrow(
      /maxWindowBytes must be at least minWindowBytes/,
    );
    expect(() => validateConfig({ readAhead: { windowBytes: 1 } })).toThrow(/readAhead/);
  });
});
