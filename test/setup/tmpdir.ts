// Every test file works in a temp dir of its own (TMPDIR, which os.tmpdir() and every child process follow) that
// is removed after the file, so a run leaves nothing in /tmp. A dir with something still mounted under it is left
// alone (removing it would walk into the mount) and named, so the leak is seen rather than hidden.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const base = process.env['FERRY_TEST_TMP_BASE'] ?? '/tmp';
const dir = mkdtempSync(join(base, 'ferry-test-'));
process.env['TMPDIR'] = dir;

afterAll(() => {
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  if (mounted.length > 0) {
    console.warn(`test temp dir ${dir} kept: still mounted under it: ${mounted.join(', ')}`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
});
