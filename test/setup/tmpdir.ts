// Every test file works in a temp dir of its own (TMPDIR, which os.tmpdir() and every child process follow) that
// is removed after the file, so a run leaves nothing in /tmp.
import { afterAll } from 'vitest';
import { makeTempRoot, removeTempRoot } from '../helpers/temp-root.js';

const dir = makeTempRoot('ferry-test-', process.env['FERRY_TEST_TMP_BASE'] ?? '/tmp');
process.env['TMPDIR'] = dir;

afterAll(() => {
  const mounted = removeTempRoot(dir);
  if (mounted.length > 0)
    console.warn(`test temp dir ${dir} kept: still mounted under it: ${mounted.join(', ')}`);
});
