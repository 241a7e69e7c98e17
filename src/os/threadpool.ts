// Thread counts Ferry sizes: libuv's pool (each raw FUSE mount parks one thread in a blocking /dev/fuse read, so
// it must be sized before Node starts; bin/ferry.js does it with the same rule) and the decode workers.
import { availableParallelism } from 'node:os';

/** libuv's default pool size. */
export const DEFAULT_POOL_THREADS = 4;

/** The pool size this process asked for (UV_THREADPOOL_SIZE, read by libuv at first use). */
export function poolThreadsAsked(env: NodeJS.ProcessEnv = process.env): number {
  return Number(env['UV_THREADPOOL_SIZE'] ?? DEFAULT_POOL_THREADS) || DEFAULT_POOL_THREADS;
}

/** The pool a holder for `maxMounts` mounts needs: one thread per mount plus spare ones for fs work. */
export function holderPoolThreads(maxMounts: number): number {
  return Math.min(1024, (Number.isInteger(maxMounts) ? maxMounts : 512) + 8);
}

/** Decode workers by default: up to 4, leaving a core to the main thread (FUSE answers there). */
export function defaultDecodeWorkers(): number {
  return Math.min(4, Math.max(1, availableParallelism() - 1));
}
