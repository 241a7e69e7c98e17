// Readiness for a Type=notify systemd unit. Node has no unix datagram sockets, so `systemd-notify` sends the
// message; with NotifyAccess=all that is race-free because systemd-notify (v246+) waits on a notify barrier until
// the manager has processed the message before it exits (so systemd can still attribute it to our cgroup).
import type { Logger } from '../log.js';
import { runChecked } from './run.js';

export type NotifyState = 'ready' | 'stopping';

/** Tells systemd about a state change; a no-op outside a Type=notify unit (no NOTIFY_SOCKET). Never throws. */
export async function notifySystemd(
  state: NotifyState,
  statusText: string,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  if (env['NOTIFY_SOCKET'] === undefined || env['NOTIFY_SOCKET'] === '') return false;
  const args = [
    `--pid=${process.pid}`,
    ...(state === 'ready' ? ['--ready'] : ['STOPPING=1']),
    `--status=${statusText}`,
  ];
  try {
    await runChecked('systemd-notify', args, { timeoutMs: 10_000, env });
    return true;
  } catch (e) {
    log.error(
      { err: e, state },
      'systemd-notify failed: a Type=notify unit needs the systemd-notify binary and NotifyAccess=all',
    );
    return false;
  }
}
