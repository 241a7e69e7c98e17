// The shipped unit as `ferry install` writes it passes `systemd-analyze verify`, and keeps the directives the
// daemon depends on (notify readiness, directories, stop timeout above the shutdown deadline, FUSE-safe hardening).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { install } from '../../src/cli/install-command.js';

const run = promisify(execFile);
const ANALYZE = '/usr/bin/systemd-analyze';

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m !== null) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe('systemd/ferry.service', () => {
  it('passes systemd-analyze verify once installed', async () => {
    if (!existsSync(ANALYZE))
      throw new Error(`${ANALYZE} is missing: apt-get install systemd (scripts/install-deps.sh)`);
    const prefix = mkdtempSync(join(tmpdir(), 'ferry-install-'));
    const r = await install({ prefix });
    const { stdout, stderr } = await run(ANALYZE, ['verify', r.socketUnitPath, r.unitPath, r.holderUnitPath]);
    expect(`${stdout}${stderr}`).not.toMatch(/ferry(-fuse)?\.(service|socket)/);
    expect(readFileSync(r.unitPath, 'utf8')).toMatch(/^ExecStart=.* daemon --config \S+ --no-spawn-holder$/m);
    expect(readFileSync(r.holderUnitPath, 'utf8')).toMatch(
      /^ExecStart=.* fuse-holder --socket \/run\/ferry\/fuse-holder.sock --orphan-timeout-ms 0$/m,
    );
  });

  it('declares notify readiness, directories, ordering and FUSE-safe hardening', () => {
    const d = directives(readFileSync(join(import.meta.dirname, '../../systemd/ferry.service'), 'utf8'));
    const one = (k: string) => d.get(k)?.[0];
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('all');
    expect(one('Before')).toBe('containerd.service');
    expect(one('StateDirectory')).toBe('ferry');
    expect(one('RuntimeDirectory')).toBe('ferry');
    expect(one('RuntimeDirectoryPreserve')).toBe('yes');
    expect(one('CacheDirectory')).toBe('ferry');
    expect(one('Restart')).toBe('on-failure');
    // containerd's socket is systemd's (ferry.socket): it outlives every restart of this unit.
    expect(one('Requires')).toMatch(/ferry\.socket/);
    expect(one('After')).toMatch(/ferry\.socket/);
    expect(one('Also')).toBe('ferry.socket');
    // The holder is its own unit, so restarting this one (KillMode=mixed ends its whole cgroup) keeps the mounts.
    expect(one('Wants')).toMatch(/ferry-fuse\.service/);
    expect(one('After')).toMatch(/ferry-fuse\.service/);
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(65536);
    expect(one('DeviceAllow')).toBe('/dev/fuse rw');
    expect(one('CapabilityBoundingSet')).toMatch(/CAP_SYS_ADMIN/);
    const stopS = parseInt(one('TimeoutStopSec') ?? '0', 10);
    expect(stopS * 1000).toBeGreaterThan(configSchema.parse({}).daemon.shutdownTimeoutMs);
    // Any of these gives the service its own mount namespace: its FUSE mounts would be invisible to containerd.
    for (const k of [
      'ProtectSystem',
      'ProtectHome',
      'PrivateTmp',
      'PrivateDevices',
      'PrivateMounts',
      'ProtectKernelModules',
      'ProtectKernelTunables',
      'ProtectControlGroups',
      'ReadWritePaths',
      'ReadOnlyPaths',
      'InaccessiblePaths',
      'TemporaryFileSystem',
      'BindPaths',
      'MountFlags',
    ])
      expect(d.has(k), k).toBe(false);
  });

  it('install keeps an existing config and rewrites ExecStart to this ferry', async () => {
    const prefix = mkdtempSync(join(tmpdir(), 'ferry-install-'));
    const first = await install({ prefix, execStart: '/bin/true' });
    expect(first.configWritten).toBe(true);
    const config = readFileSync(first.configPath, 'utf8');
    expect(config).toMatch(/^\[metrics\]$/m);
    expect(config).toMatch(/dir = "\/var\/cache\/ferry\/chunks"/);
    expect(readFileSync(first.unitPath, 'utf8')).toMatch(/^ExecStart=\/bin\/true$/m);
    const again = await install({ prefix, execStart: '/bin/true' });
    expect(again.configWritten).toBe(false);
    expect(again.snippet).toMatch(/disable_snapshot_annotations = false/);
    expect(again.snippet).toMatch(/address = "\/run\/ferry\/snapshotter.sock"/);
  });
});

describe('systemd/ferry.socket', () => {
  it("listens on containerd's address for ferry.service, and keeps the socket when stopped", async () => {
    const d = directives(readFileSync(join(import.meta.dirname, '../../systemd/ferry.socket'), 'utf8'));
    const one = (k: string) => d.get(k)?.[0];
    const r = await install({ prefix: mkdtempSync(join(tmpdir(), 'ferry-install-')) });
    // The address containerd is told to use is the one systemd listens on.
    expect(r.snippet).toContain(`address = "${one('ListenStream')}"`);
    expect(one('ListenStream')).toBe('/run/ferry/snapshotter.sock');
    expect(one('SocketMode')).toBe('0660');
    expect(one('Service')).toBe('ferry.service');
    expect(one('Before')).toBe('containerd.service');
    expect(one('RemoveOnStop')).toBe('no');
    expect(d.has('Accept')).toBe(false); // one daemon serves every connection (Accept=no)
    expect(readFileSync(r.socketUnitPath, 'utf8')).toBe(
      readFileSync(join(import.meta.dirname, '../../systemd/ferry.socket'), 'utf8'),
    );
  });
});

describe('systemd/ferry-fuse.service', () => {
  it('is a notify unit of its own that never gives up mounts while systemd restarts the daemon', () => {
    const d = directives(readFileSync(join(import.meta.dirname, '../../systemd/ferry-fuse.service'), 'utf8'));
    const one = (k: string) => d.get(k)?.[0];
    expect(one('Type')).toBe('notify');
    expect(one('ExecStart')).toMatch(/fuse-holder .*--orphan-timeout-ms 0/);
    expect(one('DeviceAllow')).toBe('/dev/fuse rw');
    expect(Number(one('OOMScoreAdjust'))).toBeLessThan(-500); // below the daemon's
    for (const k of ['ProtectSystem', 'PrivateTmp', 'PrivateDevices', 'PrivateMounts', 'MountFlags'])
      expect(d.has(k), k).toBe(false);
  });
});
