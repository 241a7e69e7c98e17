// The Dockerfile, scripts/build-image.sh and deploy/daemonset.yaml describe one image: the same Node version, the
// same name, and FERRY_* variables the daemon accepts (an unknown one stops it at start-up, on every node).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides } from '../../src/config/env-overrides.js';
import { validateConfig } from '../../src/config/load.js';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const version = (JSON.parse(read('package.json')) as { version: string }).version;
const manifest = read('deploy/daemonset.yaml');

describe('deploy manifests and the image', () => {
  it('the Dockerfile builds on the Node version the scripts install', () => {
    const nodeVersion = /^FERRY_NODE_VERSION=(\S+)$/m.exec(read('scripts/node-env.sh'))?.[1];
    expect(nodeVersion).toMatch(/^24\./);
    expect(read('Dockerfile')).toContain(`ARG NODE_VERSION=${nodeVersion}\n`);
  });

  it('both DaemonSets run the image build-image.sh names', () => {
    expect(read('scripts/build-image.sh')).toContain('name="localhost/ferry:$version"');
    const images = [...manifest.matchAll(/^\s+image: (\S+)/gm)].map((m) => m[1]);
    expect(images).toEqual([`localhost/ferry:${version}`, `localhost/ferry:${version}`]);
  });

  it('sets only FERRY_* variables that name options, and the config they give is valid', () => {
    const names = [...manifest.matchAll(/- name: (FERRY_[A-Z0-9_]+)/g)].map((m) => m[1]!);
    expect(names).toEqual(expect.arrayContaining(['FERRY_P2P_ADVERTISE', 'FERRY_METRICS_ADDRESS']));
    const env = Object.fromEntries(
      names.map((n) => [n, n.endsWith('_ADDRESS') ? '10.0.0.5:9650' : '10.0.0.5:7420']),
    );
    const config = validateConfig(applyEnvOverrides({}, env));
    expect(config.p2p.advertise).toBe('10.0.0.5:7420');
    expect(config.metrics.address).toBe('10.0.0.5:9650');
  });

  it("the ConfigMap's config.toml is a valid config", () => {
    const block = /config\.toml: \|\n((?: {4}.*\n|\n)+)/.exec(manifest)?.[1] ?? '';
    const toml = block.replace(/^ {4}/gm, '');
    expect(toml).toContain('[p2p]');
    const config = validateConfig(parseToml(toml));
    expect(config.p2p.clusterSecretFile).toBe('/etc/ferry/secret/secret');
    expect(manifest).toContain('mountPath: /etc/ferry/secret');
    expect(manifest).toContain("args: ['daemon', '--config', '/etc/ferry/config/config.toml'");
    expect(manifest).toContain('mountPath: /etc/ferry/config');
  });

  it('probes the health endpoints on the port the metrics address names', () => {
    expect(manifest).toMatch(/value: '\$\(POD_IP\):9650'/);
    expect(manifest).toMatch(/containerPort: 9650/);
    expect(manifest).toMatch(/livenessProbe:\s+httpGet: \{ path: \/healthz, port: metrics \}/);
    expect(manifest).toMatch(/readinessProbe:\s+httpGet: \{ path: \/readyz, port: metrics \}/);
  });
});
