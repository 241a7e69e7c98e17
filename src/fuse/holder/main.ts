// `ferry fuse-holder`: the long-lived process that keeps every /dev/fuse descriptor and relays requests to the
// daemon. bin/ferry.js loads this file directly (no commander, no daemon modules) to keep start-up fast and small.
import { readFile } from 'node:fs/promises';
import { createLogger, type Logger } from '../../log.js';
import { notifySystemd } from '../../os/notify.js';
import { poolThreadsAsked } from '../../os/threadpool.js';
import {
  abortFuseConnection,
  closeDevice,
  fuseConnectionOf,
  mountFuseDevice,
  readRequests,
  unmountFuse,
  writeToDevice,
} from '../raw/device.js';
import { HOLDER_HELP, parseHolderArgs, wantsHelp, type HolderArgs } from './args.js';
import { FuseHolder } from './holder.js';
import { listenHolder } from './server.js';
import { SocketRelay } from './socket-relay.js';

/** Runs a timer while `armed()` holds; fires `fire` after `ms` of it holding without interruption. */
function watch(holder: FuseHolder, ms: number, armed: () => boolean, fire: () => void): void {
  if (ms === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    if (armed()) {
      if (timer === undefined) timer = setTimeout(fire, ms).unref(); // the socket keeps the process alive
    } else if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
  };
  holder.onChange(check);
  check();
}

/**
 * Mounts the libuv pool can carry: each holds a pool thread, and a few must stay free for fs work. The pool
 * started before this code ran; if the process has fewer threads than UV_THREADPOOL_SIZE asks, it was set too
 * late and the pool has libuv's default 4.
 */
async function poolMountLimit(): Promise<number> {
  const asked = poolThreadsAsked();
  const threads = Number(/Threads:\s+(\d+)/.exec(await readFile('/proc/self/status', 'utf8'))?.[1] ?? 0);
  return Math.max(0, (threads >= asked ? asked : 4) - 4);
}

/**
 * The snapshots socket relay, when asked for. A failure leaves it off (HELLO then names no socket, and the
 * daemon binds the path itself, or reports who holds it): the mounts matter more.
 */
async function startRelay(args: HolderArgs, log: Logger): Promise<SocketRelay | undefined> {
  if (args.snapshotsSocket === '') return undefined;
  const relay = new SocketRelay({
    socketPath: args.snapshotsSocket,
    targetPath: args.snapshotsTarget,
    mode: args.snapshotsMode,
    log,
  });
  try {
    await relay.start();
    return relay;
  } catch (e) {
    log.error(
      { err: String(e), socket: args.snapshotsSocket },
      'cannot keep the snapshots socket; not relaying',
    );
    return undefined;
  }
}

export async function runHolder(args: HolderArgs): Promise<void> {
  const log = createLogger({ level: args.logLevel }).child({ component: 'fuse-holder' });
  const poolLimit = await poolMountLimit();
  if (poolLimit < args.maxMounts) {
    log.warn(
      { maxMounts: args.maxMounts, poolLimit },
      'libuv pool too small for --max-mounts; set UV_THREADPOOL_SIZE',
    );
    args = { ...args, maxMounts: poolLimit };
  }
  const relay = await startRelay(args, log);
  const holder = new FuseHolder({
    log,
    maxMounts: args.maxMounts,
    ...(relay !== undefined
      ? { snapshots: { socket: args.snapshotsSocket, target: args.snapshotsTarget } }
      : {}),
    device: {
      mount: (o) => mountFuseDevice(o),
      readRequests,
      write: writeToDevice,
      unmount: (mnt) => unmountFuse(mnt),
      connectionOf: (mnt) => fuseConnectionOf(mnt),
      abort: abortFuseConnection,
      close: closeDevice,
    },
  });
  if (relay !== undefined) holder.onChange(() => relay.nudge()); // a daemon connected: it binds soon
  const server = await listenHolder({ socketPath: args.socket, holder, log });
  let exiting = false;
  const exit = async (reason: string): Promise<void> => {
    if (exiting) return;
    exiting = true;
    log.info({ reason, mounts: holder.mountCount }, 'holder exiting; unmounting lazily');
    void server.close(); // resolves only when every connection is gone: shutdown() ends the daemon's
    await relay?.close();
    await holder.shutdown();
    log.flush();
    // Exiting closes every descriptor: the kernel ends the connections the lazy unmounts left open.
    setImmediate(() => process.exit(0));
  };
  watch(
    holder,
    args.orphanTimeoutMs,
    () => holder.mountCount > 0 && !holder.connected,
    () => void exit('orphaned'),
  );
  watch(
    holder,
    args.idleExitMs,
    () => holder.mountCount === 0 && !holder.connected,
    () => void exit('idle'),
  );
  process.on('SIGTERM', () => void exit('SIGTERM'));
  process.on('SIGINT', () => void exit('SIGINT'));
  log.info(
    {
      socket: args.socket,
      pid: process.pid,
      maxMounts: args.maxMounts,
      threadpool: process.env['UV_THREADPOOL_SIZE'],
      ...(relay !== undefined ? { snapshotsSocket: args.snapshotsSocket } : {}),
    },
    'FUSE holder listening',
  );
  // Type=notify units (ferry-fuse.service) wait for READY=1.
  void notifySystemd('ready', 'holding FUSE mounts', log);
}

try {
  if (wantsHelp(process.argv.slice(3))) {
    process.stdout.write(HOLDER_HELP);
    process.exit(0);
  }
  let args: HolderArgs;
  try {
    args = parseHolderArgs(process.argv.slice(3));
  } catch (e) {
    // A usage error, as for every other ferry command: exit 2.
    process.stderr.write(`ferry fuse-holder: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  }
  await runHolder(args);
} catch (e) {
  process.stderr.write(`ferry fuse-holder: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
