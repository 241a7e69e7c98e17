// Every external program the suite (and the benchmarks and demo) runs is installed by scripts/install-deps.sh:
// a test that passes only on a machine where someone installed a tool by hand is a test CI cannot trust.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

/** The Debian package each program comes from; `essential` ones are on every Debian system. */
const PROVIDER: Record<string, string> = {
  bash: 'essential',
  sh: 'essential',
  cat: 'essential',
  dd: 'essential',
  head: 'essential',
  mkdir: 'essential',
  mkfifo: 'essential',
  mknod: 'essential',
  sha256sum: 'essential',
  stat: 'essential',
  sync: 'essential',
  wc: 'essential',
  sort: 'essential',
  xargs: 'essential',
  find: 'essential',
  grep: 'essential',
  ls: 'essential',
  env: 'essential',
  chroot: 'essential',
  dash: 'essential',
  readelf: 'binutils',
  tar: 'tar',
  gzip: 'gzip',
  mount: 'mount',
  umount: 'mount',
  nsenter: 'util-linux',
  unshare: 'util-linux',
  skopeo: 'skopeo',
  ip: 'iproute2',
  tc: 'iproute2',
  ss: 'iproute2',
  zstd: 'zstd',
  pigz: 'pigz',
  curl: 'curl',
  setfattr: 'attr',
  getfattr: 'attr',
  fusermount: 'fuse3',
  python3: 'python3',
  busybox: 'busybox-static',
  containerd: 'containerd',
  ctr: 'containerd',
  'ctr-remote': 'stargz-snapshotter',
  'docker-registry': 'docker-registry',
  runc: 'runc',
  'systemd-analyze': 'systemd',
  go: 'golang-go',
  mmdebstrap: 'mmdebstrap',
};
/**
 * Programs a benchmark runs that no Debian package ships: a script of this repo builds them offline from packages
 * that scripts/install-deps.sh installs, and the benchmark runs the script (it is `bash`, essential) first.
 */
const BUILT: Record<string, { script: string; packages: string[] }> = {
  'containerd-stargz-grpc': {
    script: 'scripts/build-stargz-grpc.sh',
    packages: ['golang-go', 'golang-github-containerd-stargz-snapshotter-dev'],
  },
};
/** Names that look like programs in the scan but are the image contents tests create (`/usr/bin/tool`). */
const NOT_PROGRAMS = new Set(['tool', 'tool-symlink']);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'fixtures') return [];
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|mjs)$/.test(name) ? [p] : [];
  });
}

/** Programs a source runs: first arguments of exec/spawn-like calls, `/usr/bin/x` constants, shell pipelines. */
function programsIn(text: string): string[] {
  const found: string[] = [];
  const call = /\b(?:execFile|execFileSync|spawn|spawnSync|run|sh|spawnIn|runIn)\(\s*'([A-Za-z0-9_./-]+)'/g;
  for (const m of text.matchAll(call)) found.push(m[1]!.split('/').pop()!);
  // Programs named by a constant (`CTR_BINARY = '/usr/bin/ctr'`), not paths inside the images tests build.
  for (const m of text.matchAll(/\b[A-Z][A-Z0-9_]* = '\/(?:usr\/)?s?bin\/([a-z0-9-]+)'/g)) found.push(m[1]!);
  for (const m of text.matchAll(/\[\s*'([a-z0-9-]+)',/g)) {
    // argv arrays handed to spawnIn/nsenter: only count names that are known programs
    if (PROVIDER[m[1]!] !== undefined) found.push(m[1]!);
  }
  // Shell pipelines in template strings: comments use backticks too, so only known program names count here.
  for (const m of text.matchAll(/`([^`]*[^|]\| [^`]*)`/g)) {
    for (const segment of m[1]!.split(/\|(?!\|)/)) {
      const word = /^\s*(?:set -o pipefail;\s*)?([a-z][a-z0-9-]*) /.exec(segment)?.[1];
      if (word !== undefined && PROVIDER[word] !== undefined) found.push(word);
    }
  }
  return found.filter((p) => !NOT_PROGRAMS.has(p));
}

describe('programs the suite runs', () => {
  // The default (setup, CI) installs both lists; --runtime only the first.
  const script = readFileSync(join(ROOT, 'scripts/install-deps.sh'), 'utf8');
  const list = (name: string) =>
    (new RegExp(`^${name}=\\(([^)]*)\\)`, 'm').exec(script)?.[1] ?? '').split(/\s+/).filter(Boolean);
  const runtime = list('RUNTIME_PACKAGES');
  const packages = new Set([...runtime, ...list('TEST_PACKAGES')]);

  it('split into runtime packages (no compilers or test services) and test packages', () => {
    expect(runtime).toContain('libfuse2');
    expect(runtime).toContain('mount');
    for (const testOnly of ['g++', 'make', 'python3', 'golang-go', 'docker-registry', 'skopeo'])
      expect(runtime).not.toContain(testOnly);
    expect(packages.has('containerd')).toBe(true);
  });

  it('are each provided by a package that scripts/install-deps.sh installs', () => {
    const missing: string[] = [];
    for (const dir of ['test', 'bench', 'scripts']) {
      for (const file of sources(join(ROOT, dir))) {
        if (file === import.meta.filename) continue; // its own examples
        for (const program of programsIn(readFileSync(file, 'utf8'))) {
          const pkg = PROVIDER[program];
          if (pkg === undefined)
            missing.push(`${program} (run in ${file.slice(ROOT.length + 1)}): not in this test's table`);
          else if (pkg !== 'essential' && !packages.has(pkg))
            missing.push(
              `${program} (run in ${file.slice(ROOT.length + 1)}): package ${pkg} is not installed`,
            );
        }
      }
    }
    expect([...new Set(missing)]).toEqual([]);
  });

  it('programs built by a script: the script exists, builds them from installed packages, and is what runs', () => {
    const benchText = sources(join(ROOT, 'bench'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    for (const [program, { script, packages: needs }] of Object.entries(BUILT)) {
      const text = readFileSync(join(ROOT, script), 'utf8');
      expect(text).toContain(program);
      for (const pkg of needs) {
        expect(packages.has(pkg), `${pkg} (for ${script}) is not installed by install-deps.sh`).toBe(true);
        expect(text).toContain(pkg);
      }
      expect(benchText).toContain(script);
    }
  });

  it('the scan finds what it must (so that an empty result means something)', () => {
    expect(programsIn("await run('zstd', ['-d'])")).toEqual(['zstd']);
    expect(programsIn("const CTR = '/usr/bin/ctr';")).toEqual(['ctr']);
    expect(programsIn("lookup('/usr/bin/gone')")).toEqual([]);
    expect(programsIn('x = `tar -cf - . | pigz -3 > out`')).toEqual(['tar', 'pigz']);
  });
});
