// The built `ferry` binary as an operator's script sees it: usage errors (unknown command or option, missing
// argument, bad value) exit 2 with commander's message on stderr, runtime failures exit 1, and --version
// prints the version in package.json.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FERRY_BIN, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';

const exec = promisify(execFile);

async function ferryExit(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  requireBuild();
  try {
    const { stdout, stderr } = await exec(process.execPath, [FERRY_BIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('ferry exit codes', () => {
  it.each([
    [['no-such-command'], /unknown command 'no-such-command'/],
    [['status', '--no-such-option'], /unknown option '--no-such-option'/],
    [['index'], /missing required argument 'ref'/],
    [['mount', 'x'], /missing required argument 'dir'/],
    [['index', 'x', '--config'], /option '-c, --config <file>' argument missing/],
    [['prefetch', 'x', '--files', 'a', '--concurrency', 'many'], /--concurrency.*not a positive integer/],
    [['prefetch', 'x', '--priority', '1.5'], /--priority.*not an integer/],
    [['config', 'show', 'extra'], /too many arguments/],
    [['fuse-holder', '--no-such-option'], /unknown option --no-such-option/],
    [['fuse-holder', '--max-mounts', 'lots'], /--max-mounts needs a whole number/],
    [[], /Usage: ferry/],
  ])('ferry %j is a usage error: exit 2', async (args, message) => {
    const r = await ferryExit(args);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });

  it('a bad config file is a usage error too; a missing one is a runtime failure', async () => {
    const env = ferryEnv();
    const bad = resolve(env.dir, 'bad.toml');
    await exec('sh', ['-c', `printf '[cache]\\nmaxBytes = "lots"\\n' > ${bad}`]);
    const invalid = await ferryExit(['config', '--check', bad]);
    expect(invalid.stderr).toMatch(/INVALID_ARGUMENT: .*cache\.maxBytes/s);
    expect(invalid.code).toBe(2);
    const missing = await ferryExit(['config', '--check', resolve(env.dir, 'absent.toml')]);
    expect(missing.stderr).toMatch(/NOT_FOUND: cannot read config/);
    expect(missing.code).toBe(1);
  });

  it('--help and --version exit 0; --version is package.json`s', async () => {
    // A copy of the package with another version: the binary must read it, not carry its own.
    const root = resolve(import.meta.dirname, '../..');
    const copy = mkdtempSync(join(tmpdir(), 'ferry-pkg-'));
    cpSync(join(root, 'bin'), join(copy, 'bin'), { recursive: true });
    cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    writeFileSync(join(copy, 'package.json'), JSON.stringify({ ...pkg, version: '7.8.9-test.1' }));
    const version = await exec(process.execPath, [join(copy, 'bin/ferry.js'), '--version']);
    expect(version.stdout).toBe('7.8.9-test.1\n');
    expect((await ferryExit(['-V'])).stdout).toBe(`${pkg.version}\n`);
    const help = await ferryExit(['config', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/show \[options\]/);
  });
});
