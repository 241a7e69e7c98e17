// containerd's own snapshotter conformance suite (snapshots/testsuite of containerd 1.6, from Debian's
// golang-github-containerd-containerd-dev) against `ferry daemon`: runs test/conformance with `go test` in GOPATH
// mode, offline, and checks every test of the suite passed. Go or the containerd source missing fails the run.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FERRY_BIN, requireBuild } from '../helpers/ferry-cli.js';

const run = promisify(execFile);
const GO = '/usr/bin/go';
const GOCODE = '/usr/share/gocode';
const SUITE = join(GOCODE, 'src/github.com/containerd/containerd/snapshots/testsuite');
const CHECKOUT = resolve(import.meta.dirname, '../..');
/** The suite skips this one itself ("rename test still fails on some kernels with overlay"). */
const SUITE_SKIPS = new Set(['Rename']);

/** The suite's test names, read from its source: `t.Run("Basic", makeTest(...))`. */
function suiteTests(): string[] {
  const src = readFileSync(join(SUITE, 'testsuite.go'), 'utf8');
  return [...src.matchAll(/t\.Run\("([^"]+)", makeTest\(/g)].map((m) => m[1]!);
}

describe("containerd's snapshotter conformance suite", () => {
  it('passes every test against a fresh ferry daemon each', { timeout: 900_000 }, async () => {
    requireBuild();
    const missing = [GO, SUITE].filter((p) => !existsSync(p));
    if (missing.length > 0) {
      throw new Error(
        `missing ${missing.join(', ')}: the conformance suite needs Debian's golang-go and ` +
          'golang-github-containerd-containerd-dev (scripts/install-deps.sh). This is a prerequisite, not an option.',
      );
    }
    const expected = suiteTests();
    expect(expected.length).toBeGreaterThanOrEqual(20);
    const env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? '/root',
      TMPDIR: process.env['TMPDIR'] ?? '/tmp',
      GO111MODULE: 'off',
      GOPATH: GOCODE,
      GOFLAGS: '',
      // Kept between runs (gitignored): a warm cache turns the build of the suite into seconds.
      GOCACHE: join(CHECKOUT, '.cache/go-build'),
      FERRY_BIN,
      FERRY_NODE: process.execPath,
    };
    // -timeout ends the test binary (and through Pdeathsig its daemons) before execFile's timeout kills go.
    const r = await run(GO, ['test', '-count=1', '-v', '-timeout=8m', './test/conformance'], {
      cwd: CHECKOUT,
      env,
      timeout: 880_000,
      maxBuffer: 64 << 20,
    }).catch((e: unknown) => {
      const x = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`go test failed: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`);
    });
    const outcome = (word: string) =>
      [...r.stdout.matchAll(new RegExp(`--- ${word}: TestFerrySnapshotter/(\\S+)`, 'g'))].map((m) => m[1]!);
    const passed = outcome('PASS');
    const skipped = outcome('SKIP');
    expect(outcome('FAIL')).toEqual([]);
    expect(skipped.filter((n) => !SUITE_SKIPS.has(n))).toEqual([]);
    expect([...passed, ...skipped].sort()).toEqual([...expected].sort());
    expect(passed.length).toBeGreaterThanOrEqual(expected.length - SUITE_SKIPS.size);
    expect(r.stdout).toMatch(/^ok\s/m);
  });
});
