// The resolved config: paths derived from stateDir/runDir once, the FUSE timings as one object, and the keys
// renamed to the …Ms convention still read (converted, reported) but refused beside their new names.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configToml, loadConfig, validateConfig } from '../../src/config/load.js';
import { configFields } from '../../src/config/resolve.js';
import { isFerryError } from '../../src/errors.js';

async function configFile(text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'ferry-resolve-')), 'config.toml');
  await writeFile(file, text);
  return file;
}

describe('resolved config', () => {
  it('derives every path from stateDir and runDir unless set', () => {
    const c = validateConfig({ daemon: { stateDir: '/srv/ferry', runDir: '/run/f' } });
    expect(c.paths).toEqual({
      stateDir: '/srv/ferry',
      runDir: '/run/f',
      cacheDir: '/srv/ferry/chunks',
      indexDir: '/srv/ferry/indexes',
      tracesDir: '/srv/ferry/traces',
      snapshotRoot: '/srv/ferry/snapshots',
      snapshotterSocket: '/run/f/snapshotter.sock',
      holderSocket: '/run/f/fuse-holder.sock',
      statusSocket: '/run/f/ferry.sock',
      hintSocket: '/run/f/prefetch.sock',
      mountStateDir: '/run/f/mounts',
      mountScratchDir: '/run/f/mnt',
    });
    const set = validateConfig({
      cache: { dir: '/cache' },
      snapshotter: { root: '/s', socketPath: '/x.sock' },
      fuse: { holderSocket: '/h.sock' },
      daemon: { statusSocketPath: '/st.sock' },
      prefetch: { hintSocketPath: '/p.sock' },
    });
    expect(set.paths).toMatchObject({
      cacheDir: '/cache',
      snapshotRoot: '/s',
      snapshotterSocket: '/x.sock',
      holderSocket: '/h.sock',
      statusSocket: '/st.sock',
      hintSocket: '/p.sock',
    });
    expect(Object.isFrozen(set.paths)).toBe(true);
  });

  it('hands the FUSE timings on as one object, in ms', () => {
    const c = validateConfig({ fuse: { readDeadlineMs: 5000, attrTimeoutMs: 1500 } });
    expect(c.fuseTimings).toEqual({
      readDeadlineMs: 5000,
      attrTimeoutMs: 1500,
      entryTimeoutMs: 3_600_000,
      negativeTimeoutMs: 3_600_000,
    });
  });

  it('reads the old second-valued keys as ms, naming each', async () => {
    const c = await loadConfig(
      await configFile('[fuse]\nattrTimeoutS = 2.5\nnegativeTimeoutS = 60\n[metrics]\nhungReadSeconds = 5\n'),
      {},
    );
    expect(c.fuse.attrTimeoutMs).toBe(2500);
    expect(c.fuse.negativeTimeoutMs).toBe(60_000);
    expect(c.metrics.hungReadMs).toBe(5000);
    expect(c.deprecations).toEqual([
      { old: 'fuse.attrTimeoutS', use: 'fuse.attrTimeoutMs' },
      { old: 'fuse.negativeTimeoutS', use: 'fuse.negativeTimeoutMs' },
      { old: 'metrics.hungReadSeconds', use: 'metrics.hungReadMs' },
    ]);
    expect(configFields(c).fuse).not.toHaveProperty('attrTimeoutS');
    expect(validateConfig({}).deprecations).toEqual([]);
  });

  it('refuses a file that sets both the old and the new key', async () => {
    const e = await loadConfig(
      await configFile('[fuse]\nentryTimeoutS = 1\nentryTimeoutMs = 1000\n'),
      {},
    ).catch((x: unknown) => x);
    expect(isFerryError(e, 'INVALID_ARGUMENT')).toBe(true);
    expect((e as Error).message).toMatch(/fuse\.entryTimeoutS and fuse\.entryTimeoutMs are both set/);
  });

  it('takes the old key as a FERRY_* variable too, over the file', async () => {
    const c = await loadConfig(await configFile('[fuse]\nattrTimeoutMs = 1000\n'), {
      FERRY_FUSE_ATTR_TIMEOUT_S: '7',
    });
    expect(c.fuse.attrTimeoutMs).toBe(7000);
    expect(c.deprecations).toEqual([{ old: 'fuse.attrTimeoutS', use: 'fuse.attrTimeoutMs' }]);
  });

  it('prints and re-validates its own fields only', () => {
    const c = validateConfig({});
    const fields = configFields(c);
    expect(fields).not.toHaveProperty('paths');
    expect(configToml(fields)).not.toMatch(/paths|fuseTimings|deprecations/);
    expect(validateConfig(fields)).toEqual(c);
  });
});
