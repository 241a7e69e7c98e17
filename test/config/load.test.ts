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

  it('reports a TOML syntax error by file, line and column, never the text of the line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-cfg-'));
    const file = join(dir, 'secret.toml');
    const lines = [
      '[registry]',
      '[[registry.credentials]]',
      'host = "reg.example.com"',
      'username = "ci"',
      'password = "hunter2-PASSWORD-x" extra', // the syntax error is on the line with the password
    ];
    await writeFile(file, `${lines.join('\n')}\n`);
    let message = '';
    try {
      await loadConfig(file);
    } catch (e) {
      expect(isFerryError(e, 'INVALID_ARGUMENT')).toBe(true);
      expect((e as Error).cause).toBeUndefined(); // the parser's error quotes the lines
      message = (e as Error).message;
    }
    expect(message).toBe(
      `${file} is not valid TOML: each key-value declaration must be followed by an end-of-line at line 5, column 33`,
    );
    // A date the parser cannot read: its own message would quote the value.
    await writeFile(file, 'password = 2026-13-45T99:99:99-hunter2\n');
    await expect(loadConfig(file)).rejects.toThrow(/is not valid TOML: .*at line 1, column \d+$/);
    await expect(loadConfig(file)).rejects.not.toThrow(/hunter2/);
  });

  it('validates registry credentials without echoing them', () => {
    const bad: Array<Record<string, string>> = [
      { host: 'a.io', username: 'u', password: '' },
      { host: 'a.io', username: 'u' },
      { host: 'a.io', password: 'hunter2-PASSWORD' },
      { host: 'a.io', identityToken: 'tok-hunter2-PASSWORD', password: 'hunter2-PASSWORD' },
      { host: 'a.io', username: 'u:hunter2-PASSWORD', password: 'p' },
      { host: 'a io', username: 'u', password: 'hunter2-PASSWORD' },
      { host: '', identityToken: 't' },
    ];
    for (const entry of bad) {
      let message = '';
      try {
        validateConfig({ registry: { credentials: [entry] } });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, JSON.stringify(entry)).toMatch(/registry\.credentials\.0/);
      expect(message).not.toMatch(/hunter2/);
    }
    const ok = validateConfig({
      registry: {
        credentials: [
          { host: 'a.io:5000', username: 'u', password: 'p:w' },
          { host: 'https://index.docker.io/v1/', identityToken: 't' },
        ],
      },
    });
    expect(ok.registry.credentials).toHaveLength(2);
  });

  it('fails on a named config file that does not exist', async () => {
    await expect(loadConfig('/nonexistent/ferry.toml')).rejects.toThrow(/cannot read config/);
  });
});
