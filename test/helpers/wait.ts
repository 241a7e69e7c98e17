// Waiting for a condition or a process exit with a deadline, instead of sleeping a fixed time and hoping: a loaded
// 2-core CI machine makes every fixed sleep either too short (a flake) or too long (a slow suite).

/** Resolves once `cond` holds (checked every `pollMs`); throws naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  pollMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** True while a process with `pid` exists (a zombie counts: its parent has not reaped it yet). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves once process `pid` is gone and the kernel has released what it held (its FUSE connections abort on
 * exit). For a child of this process, await its 'exit' event instead: an unreaped child stays a zombie.
 */
export async function processGone(pid: number, timeoutMs = 10_000): Promise<void> {
  await until(`process ${pid} to exit`, () => !alive(pid), timeoutMs);
}
