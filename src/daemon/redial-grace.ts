// When the daemon may call itself ready: once a containerd started before the snapshots socket existed can reach
// it. Such a containerd dials in 20 s attempts; one that ended while the path was missing leaves its proxy client
// failing every call fast ("dial …: timeout") for its reconnect backoff, although the socket exists by then.
import { lstat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** containerd's proxy-plugin reconnect backoff (MaxDelay 3 s) plus grpc-go's 20 % jitter, with a margin. */
export const CONTAINERD_REDIAL_MS = 5_000;

/**
 * How long until the socket at `path` has existed for `graceMs`, by its inode's change time (binding it, and
 * the chmod and rename that put it in place, set that). 0 for an older socket or none; at most `graceMs`.
 */
export async function socketSettleMs(path: string, graceMs: number, now = Date.now()): Promise<number> {
  const st = await lstat(path).catch(() => undefined);
  if (st === undefined) return 0;
  return Math.min(graceMs, Math.max(0, Math.ceil(graceMs - (now - st.ctimeMs))));
}

/**
 * Waits until the socket at `path` has existed for `graceMs`; resolves with how long it waited. The wait never
 * keeps the process alive: a daemon stopped within it must exit at once (under socket activation its successor
 * is spawned only then, and containerd's connections wait in the backlog until one answers).
 */
export async function socketSettled(path: string, graceMs: number): Promise<number> {
  const ms = await socketSettleMs(path, graceMs);
  if (ms > 0) await sleep(ms, undefined, { ref: false });
  return ms;
}
