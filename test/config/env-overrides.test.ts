// FERRY_<SECTION>_<KEY> variables over the config file: typed by the schema, validated like the file, typos refused.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides, envName } from '../../src/config/env-overrides.js';
import { loadConfig } from '../../src/config/load.js';
import { isFerryError } from '../../src/errors.js';

async function configFile(text: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'ferry-env-')), 'config.toml');
  await writeFile(file, text);
  return file;
}

describe('FERRY_* config overrides', () => {
  it('names each option FERRY_<SECTION>_<KEY> in upper snake case', () => {
    expect(envName('p2p', 'advertise')).toBe('FERRY_P2P_ADVERTISE');
    expect(envName('daemon', 'stateDir')).toBe('FERRY_DAEMON_STATE_DIR');
    expect(envName('readAhead', 'maxInFlightChunks')).toBe('FERRY_READ_AHEAD_MAX_IN_FLIGHT_CHUNKS');
  });

  it('override the file, typed by the schema: strings, numbers, booleans, lists', async () => {
    const file = await configFile('[p2p]\nenabled = false\nlisten = "0.0.0.0:7420"\nhedgeAfterMs = 150\n');
    const c = await loadConfig(file, {
      FERRY_P2P_ENABLED: 'true',
      FERRY_P2P_ADVERTISE: '10.1.2.3:7420',
      FERRY_P2P_HEDGE_AFTER_MS: '90',
      FERRY_P2P_PEERS: '10.1.2.3:7420, 10.1.2.4:7420',
      FERRY_METRICS_ADDRESS: '10.1.2.3:9650',
      FERRY_REGISTRY_INSECURE_HOSTS: '["127.0.0.1:5000"]',
      FERRY_LOG_LEVEL: 'debug', // not an option's name (no [log] section): left to the logger
    });
    expect(c.p2p.enabled).toBe(true);
    expect(c.p2p.listen).toBe('0.0.0.0:7420'); // from the file
    expect(c.p2p.advertise).toBe('10.1.2.3:7420');
    expect(c.p2p.hedgeAfterMs).toBe(90);
    expect(c.p2p.peers).toEqual(['10.1.2.3:7420', '10.1.2.4:7420']);
    expect(c.metrics.address).toBe('10.1.2.3:9650');
    expect(c.registry.insecureHosts).toEqual(['127.0.0.1:5000']);
  });

  it('apply without a file too (the default path missing)', async () => {
    const c = await loadConfig(undefined, { FERRY_DAEMON_STATE_DIR: '/srv/ferry' });
    expect(c.daemon.stateDir).toBe('/srv/ferry');
  });

  it('refuse a misspelt option under a known section, and a value of the wrong type', async () => {
    const file = await configFile('');
    const typo = await loadConfig(file, { FERRY_P2P_ADVERTIZE: 'x' }).catch((e: unknown) => e);
    expect(isFerryError(typo, 'INVALID_ARGUMENT')).toBe(true);
    expect((typo as Error).message).toContain('FERRY_P2P_ADVERTIZE');
    const notNumber = await loadConfig(file, { FERRY_CACHE_MAX_BYTES: 'lots' }).catch((e: unknown) => e);
    expect((notNumber as Error).message).toMatch(/FERRY_CACHE_MAX_BYTES: expected a number/);
    const badEnum = await loadConfig(file, { FERRY_DAEMON_LOG_LEVEL: 'loud' }).catch((e: unknown) => e);
    expect((badEnum as Error).message).toContain('daemon.logLevel');
  });

  it('never echo a value in an error (it may be a secret)', () => {
    const value = '[[ "hunter2-PASSWORD" ';
    let message = '';
    try {
      applyEnvOverrides({}, { FERRY_REGISTRY_CREDENTIALS: value });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('FERRY_REGISTRY_CREDENTIALS');
    expect(message).not.toContain('hunter2');
  });

  it('leave the parsed file untouched when no variable is set', () => {
    const raw = { p2p: { enabled: true } };
    expect(applyEnvOverrides(raw, { PATH: '/bin', HOME: '/root' })).toBe(raw);
  });
});
