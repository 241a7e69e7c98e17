// Reads the JSON reports of the unit and integration runs (scripts/test.sh) and fails unless every test file
// on disk ran with at least one test, none was skipped, and nothing failed; prints one closing summary line.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const out = process.argv[2] ?? '.test-results';
const filtered = process.env.FERRY_TEST_FILTERED === '1';

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? testFiles(p) : name.endsWith('.test.ts') ? [relative(root, p)] : [];
  });
}

const onDisk = testFiles(join(root, 'test'));
const projects = {
  unit: onDisk.filter((f) => !f.startsWith('test/integration/')),
  integration: onDisk.filter((f) => f.startsWith('test/integration/')),
};
let passed = 0;
let failed = 0;
let skipped = 0;
const problems = [];
for (const [name, expected] of Object.entries(projects)) {
  let report;
  try {
    report = JSON.parse(readFileSync(join(out, `${name}.json`), 'utf8'));
  } catch {
    problems.push(`${name}: no report (the run did not finish)`);
    continue;
  }
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  const ran = new Map(report.testResults.map((r) => [relative(root, r.name), r]));
  if (!filtered) {
    for (const f of expected) {
      const r = ran.get(f);
      if (r === undefined) problems.push(`${name}: ${f} did not run`);
      else if (r.assertionResults.length === 0) problems.push(`${name}: ${f} ran no test`);
    }
  }
  const skips = report.testResults.flatMap((r) =>
    r.assertionResults.filter((a) => a.status === 'pending' || a.status === 'skipped' || a.status === 'todo'),
  );
  for (const s of skips) problems.push(`${name}: skipped: ${s.fullName}`);
  console.log(`${name}: ${ran.size} files (${expected.length} on disk), ${report.numTotalTests} tests`);
}
for (const p of problems) console.log(`test-results: ${p}`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || problems.length > 0 ? 1 : 0);
