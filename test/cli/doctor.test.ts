// `ferry doctor`: the containerd config checks (v2 and v3), and the built binary exits non-zero with a clear
// message when containerd's config lacks the proxy plugin.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { checkContainerdConfig, containerdSnippet } from '../../src/config/containerd-config.js';
import { runChecks } from '../../src/cli/doctor-command.js';
import { FERRY_BIN, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';

const run = promisify(execFile);
const want = { name: 'ferry', socketPath: '/run/ferry/snapshotter.sock' };

describe('containerd config checks', () => {
  it('accepts the snippet ferry install prints', () => {
    const found = checkContainerdConfig(`version = 2\n${containerdSnippet(want)}`, want);
    expect(found.filter((f) => !f.ok)).toEqual([]);
    expect(found.length).toBeGreaterThanOrEqual(4);
  });

  it('names each missing piece with a fix', () => {
    const found = checkContainerdConfig(
      'version = 2\n[proxy_plugins.ferry]\ntype = "snapshot"\naddress = "/elsewhere.sock"\n',
      want,
    );
    const bad = found.filter((f) => !f.ok).map((f) => f.message);
    expect(bad.join('\n')).toMatch(/address is "\/elsewhere.sock"/);
    expect(bad.join('\n')).toMatch(/CRI snapshotter is "overlayfs"/);
    expect(bad.join('\n')).toMatch(/disable_snapshot_annotations/);
    expect(found.every((f) => f.ok || f.fix !== undefined)).toBe(true);
  });

  it('checks containerd 2.x (version 3) tables and the transfer-service export', () => {
    const text = [
      'version = 3',
      "[plugins.'io.containerd.cri.v1.images']",
      'snapshotter = "ferry"',
      'disable_snapshot_annotations = false',
      '[proxy_plugins.ferry]',
      'type = "snapshot"',
      'address = "/run/ferry/snapshotter.sock"',
    ].join('\n');
    const bad = checkContainerdConfig(text, want).filter((f) => !f.ok);
    expect(bad.map((f) => f.message)).toEqual([expect.stringMatching(/enable_remote_snapshot_annotations/)]);
  });

  it('reports unparsable TOML', () => {
    expect(checkContainerdConfig('[[[', want)[0]).toMatchObject({ ok: false });
  });
});

describe('ferry doctor', () => {
  it('fails on a missing /dev/fuse and overlayfs (checks with substituted paths)', async () => {
    const env = ferryEnv();
    const dir = mkdtempSync(join(tmpdir(), 'ferry-doctor-'));
    writeFileSync(join(dir, 'filesystems'), 'nodev\tproc\nnodev\ttmpfs\n');
    const findings = await runChecks({
      config: env.configPath,
      devFuse: join(dir, 'no-fuse'),
      procFilesystems: join(dir, 'filesystems'),
      containerdConfig: join(dir, 'missing.toml'),
    });
    const fails = findings.filter((f) => f.severity === 'fail').map((f) => `${f.check}: ${f.message}`);
    expect(fails).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^fuse: .*no-fuse is missing/),
        expect.stringMatching(/^overlayfs: /),
        expect.stringMatching(/^containerd: cannot read/),
      ]),
    );
  });

  it('exits 1 and says what to fix when containerd has no ferry proxy plugin', async () => {
    requireBuild();
    const env = ferryEnv();
    const ctd = join(env.dir, 'containerd.toml');
    writeFileSync(
      ctd,
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\nsnapshotter = "overlayfs"\n',
    );
    const r = await run(process.execPath, [
      FERRY_BIN,
      'doctor',
      '--config',
      env.configPath,
      '--containerd-config',
      ctd,
    ]).then(
      (x) => ({ code: 0, ...x }),
      (e: unknown) => e as { code: number; stdout: string; stderr: string },
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+containerd\s+.*no \[proxy_plugins\.ferry\] table/);
    expect(r.stdout).toMatch(/fix: add the snippet printed by `ferry install`/);
    expect(r.stdout).toMatch(/problem\(s\) to fix/);
  });
});
