import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfigToml, loadConfig, validateConfig } from '../../src/config/load.js';
import { isFerryError } from '../../src/errors.js';

describe('config', () => {
  it('has a working default for every option', () => {
    const c = validateConfig({});
    expect(c.daemon.stateDir).toBe('/var/lib/ferry');
    expect(c.index.chunkSizeBytes).toBe(1024 * 1024);
    expect(Object.isFrozen(c.cache)).toBe(true);
  });

  it('round-trips the printed defaults', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-cfg-'));
    const file = join(dir, 'config.toml');
    await writeFile(file, defaultConfigToml());
    expect(await loadConfig(file)).toEqual(validateConfig({}));
  });

  it('names every bad field', () => {
    try {
      validateConfig({ cache: { maxBytes: -1 }, fuse: { readDeadlineMs: 'soon' }, bogus: true });
      expect.unreachable();
    } catch (e) {
      expect(isFerryError(e, 'INVALID_ARGUMENT')).toBe(true);
      const msg = (e as Error).message;
      expect(msg).toContain('cache.maxBytes');
      expect(msg).toContain('fuse.readDeadlineMs');
      expect(msg).toContain('bogus');
    }
  });

  it('reports TOML syntax errors with the file name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-cfg-'));
    const file = join(dir, 'bad.toml');
    await writeFile(file, '[cache\nmaxBytes = 1');
    await expect(loadConfig(file)).rejects.toThrow(/bad\.toml is not valid TOML/);
  });

  it('fails on a named config file that does not exist', async () => {
    await expect(loadConfig('/nonexistent/ferry.toml')).rejects.toThrow(/cannot read config/);
  });
});
