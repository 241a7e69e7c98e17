// systemd socket activation (sd_listen_fds(3)): the listening socket ferry.socket passes, when it is for us.
// The variables are removed once read, so no child of the daemon takes the socket for its own.

/** The first passed descriptor, fd 3 */
const SD_LISTEN_FDS_START = 3;

/**
 * The inherited listening descriptor when LISTEN_PID names this process and LISTEN_FDS counts at least one;
 * undefined otherwise. Only the first is used (ferry.socket passes one).
 */
export function takeActivatedSocket(
  env: NodeJS.ProcessEnv = process.env,
  pid = process.pid,
): number | undefined {
  const listenPid = env['LISTEN_PID'];
  const listenFds = env['LISTEN_FDS'];
  delete env['LISTEN_PID'];
  delete env['LISTEN_FDS'];
  delete env['LISTEN_FDNAMES'];
  if (listenPid === undefined || listenFds === undefined) return undefined;
  if (Number(listenPid) !== pid) return undefined;
  const n = Number(listenFds);
  return Number.isInteger(n) && n >= 1 ? SD_LISTEN_FDS_START : undefined;
}
