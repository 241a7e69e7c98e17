// A temp root for one run of something that spawns ferry nodes (a test file, a benchmark): TMPDIR points into it,
// and it is removed afterwards unless something is still mounted under it (removing it would walk into the
// mount), in which case it is kept and named so that the leak is seen rather than hidden.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export function makeTempRoot(prefix: string, base = '/tmp'): string {
  return mkdtempSync(join(base, prefix));
}

/** Removes `dir`; returns the mount points that kept it instead (none: removed). */
export function removeTempRoot(dir: string): string[] {
  const mounted = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  if (mounted.length === 0) rmSync(dir, { recursive: true, force: true });
  return mounted;
}
