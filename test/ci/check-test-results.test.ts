// scripts/check-test-results.mjs is what makes `npm test` (and so CI) fail when a project ran fewer files than
// are on disk: an emptied or mis-configured project, a file that collected no test, a skip. Fed reports shaped like
// vitest's JSON reporter's, for the files really on disk.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(ROOT, 'scripts/check-test-results.mjs');
const run = promisify(execFile);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? testFiles(p) : name.endsWith('.test.ts') ? [p] : [];
  });
}

const all = testFiles(join(ROOT, 'test'));
const integration = all.filter((f) => relative(ROOT, f).startsWith('test/integration/'));
const unit = all.filter((f) => !integration.includes(f));

type Status = 'passed' | 'failed' | 'skipped';
function report(files: string[], status: (file: string) => Status = () => 'passed'): object {
  const results = files.map((name) => ({
    name,
    assertionResults: [{ status: status(name), fullName: `${relative(ROOT, name)} works` }],
  }));
  const count = (s: Status) => results.filter((r) => r.assertionResults[0]!.status === s).length;
  return {
    numPassedTests: count('passed'),
    numFailedTests: count('failed'),
    numPendingTests: count('skipped'),
    numTodoTests: 0,
    numTotalTests: results.length,
    testResults: results,
  };
}

async function check(reports: {
  unit?: object;
  integration?: object;
}): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-results-'));
  dirs.push(dir);
  mkdirSync(dir, { recursive: true });
  for (const [name, r] of Object.entries(reports))
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(r));
  try {
    const { stdout } = await run(process.execPath, [SCRIPT, dir], {
      env: { ...process.env, FERRY_TEST_FILTERED: '0' },
    });
    return { code: 0, out: stdout };
  } catch (e) {
    const x = e as { code: number; stdout: string };
    return { code: x.code, out: x.stdout };
  }
}

describe('check-test-results', () => {
  it('passes when every file on disk ran and passed', async () => {
    const r = await check({ unit: report(unit), integration: report(integration) });
    expect(r.out).toContain(`${all.length} passed, 0 failed, 0 skipped`);
    expect(r.code).toBe(0);
  });

  it('fails when the integration project ran no file (emptied or mis-configured)', async () => {
    const r = await check({ unit: report(unit), integration: report([]) });
    expect(r.code).toBe(1);
    expect(r.out).toContain(`integration: 0 files (${integration.length} on disk)`);
    expect(r.out).toMatch(/test-results: integration: test\/integration\/\S+ did not run/);
  });

  it('fails when a project left no report (the run died)', async () => {
    const r = await check({ unit: report(unit) });
    expect(r.code).toBe(1);
    expect(r.out).toContain('integration: no report');
  });

  it('fails on a skipped test and on a failed one', async () => {
    const skipped = await check({
      unit: report(unit),
      integration: report(integration, (f) => (f === integration[0] ? 'skipped' : 'passed')),
    });
    expect(skipped.code).toBe(1);
    expect(skipped.out).toMatch(/integration: skipped: /);
    const failed = await check({
      unit: report(unit, (f) => (f === unit[0] ? 'failed' : 'passed')),
      integration: report(integration),
    });
    expect(failed.code).toBe(1);
    expect(failed.out).toContain('1 failed');
  });
});
