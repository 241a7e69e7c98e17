// The kernel mount Ferry makes besides FUSE: the read-only overlay over layer mounts (os/unmount.ts undoes it).
import { FerryError } from '../errors.js';
import { run } from '../os/run.js';

/**
 * Stacks read-only lower dirs (top first) at `target`. Overlay needs two lowers without an upper dir. Without
 * `suidDev`, nosuid,nodev: setuid bits and device nodes in the layers grant nothing.
 */
export async function mountReadOnlyOverlay(
  lowerTopFirst: readonly string[],
  target: string,
  opts: { suidDev?: boolean } = {},
): Promise<void> {
  if (lowerTopFirst.length < 2)
    throw new FerryError('INVALID_ARGUMENT', 'overlay needs at least two lower dirs');
  for (const d of lowerTopFirst) {
    if (/[,:\\]/.test(d))
      throw new FerryError('INVALID_ARGUMENT', `overlay lower dir has a reserved char: ${d}`);
  }
  const options = [
    ...(opts.suidDev === true ? [] : ['nosuid', 'nodev']),
    `lowerdir=${lowerTopFirst.join(':')}`,
  ].join(',');
  const r = await run('mount', ['-t', 'overlay', 'overlay', '-o', options, target]).catch((e: unknown) => ({
    code: -1,
    output: String(e),
  }));
  if (r.code !== 0) throw new FerryError('INTERNAL', `overlay mount at ${target} failed: ${r.output}`);
}
