// Detaching a FUSE mount from user space: `fusermount -uz` (no libfuse binding needed, so callers that never mount
// with fuse-native do not load it).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** `fusermount -uz <dir>`: detach now, release when the last user goes (a busy or dead mount still goes). */
export async function lazyUnmount(dir: string, signal?: AbortSignal): Promise<void> {
  await execFileAsync('fusermount', ['-uz', dir], signal === undefined ? {} : { signal });
}
