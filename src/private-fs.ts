// Paths only Ferry's user can reach: private directories (0700, tightened when they already exist) and unix
// sockets bound inside a fresh 0700 directory, given their final mode there and renamed into place — no window
// in which another user can connect, without process.umask (process-wide, racing every other open).
import { chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Creates `path` (and missing parents) 0700; an existing `path` is tightened to 0700. */
export async function privateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  await chmod(path, 0o700);
}

/** Creates `path` with `mode` exactly (a restrictive process umask would narrow mkdir's mode). */
export async function dirWithMode(path: string, mode: number): Promise<void> {
  const created = await mkdir(path, { recursive: true, mode });
  if (created !== undefined) await chmod(path, mode);
}

/**
 * Binds a unix socket at `path` with `mode`: `bind` listens on a path inside a new 0700 directory next to
 * `path` (same filesystem, so the rename is atomic), the socket gets `mode` there and is renamed to `path`.
 * Whatever `path` held is replaced; callers check for a live socket first. On failure the caller closes
 * what `bind` opened.
 */
export async function bindSocketPrivately<T>(
  path: string,
  mode: number,
  bind: (privatePath: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(dirname(path), '.sock-'));
  try {
    const inner = join(dir, 's');
    const bound = await bind(inner);
    await chmod(inner, mode);
    await rename(inner, path);
    return bound;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
