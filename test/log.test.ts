// What an operator sees of Ferry's logs: one readable line per record on a terminal (a real pty from
// script(1)), JSON lines elsewhere, errors with their stack and cause, and under journald each line prefixed
// with its syslog priority so warnings and errors are filtered as such.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { journalLine, prettyLine } from '../src/log.js';
import { requireBuild } from './helpers/ferry-cli.js';

const exec = promisify(execFile);
const CHILD = resolve(import.meta.dirname, 'helpers/log-child.mjs');

async function runChild(env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  requireBuild();
  const base = { ...process.env };
  delete base['JOURNAL_STREAM'];
  delete base['FERRY_LOG_FORMAT'];
  return exec(process.execPath, [CHILD], { env: { ...base, ...env } });
}

describe('log output', () => {
  it('is JSON lines with the error`s stack and cause when stderr is a pipe', async () => {
    const { stderr } = await runChild({});
    const records = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => r['msg'])).toEqual(['debug line', 'info line', 'warn line', 'error line']);
    const err = records[3]!['err'] as {
      message: string;
      stack: string;
      cause: { message: string; stack: string };
    };
    expect(err.message).toBe('outer failure');
    expect(err.stack).toMatch(/^Error: outer failure\n\s+at /);
    expect(err.cause.message).toBe('inner cause');
    expect(err.cause.stack).toMatch(/^Error: inner cause\n\s+at /);
  });

  it('is one readable line per record on a terminal', async () => {
    requireBuild();
    // script(1) gives the child a pty for stdin, stdout and stderr and copies what it printed to our stdout.
    const { stdout } = await exec('script', ['-qec', `${process.execPath} ${CHILD}`, '/dev/null'], {
      env: { ...process.env, FERRY_LOG_FORMAT: 'auto' },
    });
    const out = stdout.replace(/\r/g, '');
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d DEBUG probe debug line$/);
    expect(lines[1]).toMatch(/^\d\d:\d\d:\d\d INFO  probe info line bytes=5 ref="a b"$/);
    expect(lines[2]).toMatch(/^\d\d:\d\d:\d\d WARN  probe warn line$/);
    expect(lines[3]).toMatch(/^\d\d:\d\d:\d\d ERROR probe error line err="outer failure"$/);
    expect(lines[4]).toBe('    Error: outer failure');
    expect(out).toMatch(/\n {4}caused by: Error: inner cause\n {8}at /);
    expect(out).not.toContain('{"level"');
  });

  it('keeps JSON on a terminal when FERRY_LOG_FORMAT=json', async () => {
    requireBuild();
    const { stdout } = await exec('script', ['-qec', `${process.execPath} ${CHILD}`, '/dev/null'], {
      env: { ...process.env, FERRY_LOG_FORMAT: 'json' },
    });
    expect(stdout.split('\n')[0]).toMatch(/^\{"level":20,/);
  });

  it('carries the syslog priority of each record when stdout is the journal stream', async () => {
    const { stdout } = await runChild({ LOG_AS_JOURNAL: '1', LOG_TO: 'auto' });
    const lines = stdout.trim().split('\n');
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['<7>', '<6>', '<4>', '<3>']);
    expect((JSON.parse(lines[3]!.slice(3)) as { msg: string }).msg).toBe('error line');
  });

  it('has no priority prefix when JOURNAL_STREAM names another stream (an inherited variable)', async () => {
    const { stdout } = await runChild({ JOURNAL_STREAM: '1:1', LOG_TO: 'stdout' });
    expect(stdout.split('\n')[0]).toMatch(/^\{"level":20,/);
  });

  it('prefixes every line of a multi-line record and formats odd records safely', () => {
    expect(journalLine('a\nb\n', 50)).toBe('<3>a\n<3>b\n');
    expect(journalLine('x\n', 60)).toBe('<2>x\n');
    expect(prettyLine('not json\n')).toBe('not json\n');
    expect(prettyLine('{"level":30,"time":0,"msg":{"a":1},"err":"plain"}')).toMatch(
      /^\d\d:\d\d:\d\d INFO  \{"a":1\} err=plain\n$/,
    );
  });
});
