// Command-line options of `ferry fuse-holder`, parsed by hand: the holder must not load commander.

export interface HolderArgs {
  socket: string;
  maxMounts: number;
  orphanTimeoutMs: number;
  idleExitMs: number;
  logLevel: string;
  /** Keep the snapshots socket here across daemon restarts, relayed to snapshotsTarget ('' = off). */
  snapshotsSocket: string;
  snapshotsTarget: string;
  snapshotsMode: number;
}

const USAGE =
  'usage: ferry fuse-holder --socket <path> [--max-mounts <n>] [--orphan-timeout-ms <ms>] ' +
  '[--idle-exit-ms <ms>] [--log-level <level>] ' +
  '[--snapshots-socket <path> --snapshots-target <path> [--snapshots-mode <octal>]]';

export const HOLDER_HELP = `${USAGE}

Keeps the /dev/fuse descriptor of every layer \`ferry daemon\` mounts and relays the kernel's requests to the
daemon over a unix socket (mode 0600), so daemon restarts do not break running containers. \`ferry daemon\`
starts one when none answers; under systemd, ferry-fuse.service runs it. See docs/restart.md.

  --socket <path>            the socket the daemon connects to (daemon default: <runDir>/fuse-holder.sock)
  --max-mounts <n>           mounts held at once (default 512; each holds a libuv pool thread)
  --orphan-timeout-ms <ms>   with mounts but no daemon this long, unmount them and exit (default 600000; 0 never)
  --idle-exit-ms <ms>        with no mounts and no daemon this long, exit (default 30000; 0 never)
  --log-level <level>        pino level (default info)
  --snapshots-socket <path>  also listen on containerd's snapshots socket and relay each connection to the
                             daemon's own socket; connections made while no daemon runs wait for the next one
  --snapshots-target <path>  the daemon's own snapshots socket (required with --snapshots-socket)
  --snapshots-mode <octal>   mode of --snapshots-socket (default 660)
SIGTERM/SIGINT: unmount every held layer (lazily) and exit.
`;

/** True when the arguments ask for the help text. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** Parses `fuse-holder`'s own options (argv after the subcommand); throws with the usage on anything else. */
export function parseHolderArgs(argv: readonly string[]): HolderArgs {
  const out: HolderArgs = {
    socket: '',
    maxMounts: 512,
    orphanTimeoutMs: 600_000,
    idleExitMs: 30_000,
    logLevel: 'info',
    snapshotsSocket: '',
    snapshotsTarget: '',
    snapshotsMode: 0o660,
  };
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isInteger(n) || n < 0)
      throw new Error(`${name} needs a whole number\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--socket':
        out.socket = value() ?? '';
        break;
      case '--max-mounts':
        out.maxMounts = num(flag, value());
        break;
      case '--orphan-timeout-ms':
        out.orphanTimeoutMs = num(flag, value());
        break;
      case '--idle-exit-ms':
        out.idleExitMs = num(flag, value());
        break;
      case '--log-level':
        out.logLevel = value() ?? 'info';
        break;
      case '--snapshots-socket':
        out.snapshotsSocket = value() ?? '';
        break;
      case '--snapshots-target':
        out.snapshotsTarget = value() ?? '';
        break;
      case '--snapshots-mode': {
        const v = value() ?? '';
        if (!/^[0-7]{3,4}$/.test(v)) throw new Error(`--snapshots-mode needs an octal mode\n${USAGE}`);
        out.snapshotsMode = parseInt(v, 8);
        break;
      }
      default:
        throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  if (out.socket === '') throw new Error(`--socket is required\n${USAGE}`);
  if ((out.snapshotsSocket === '') !== (out.snapshotsTarget === ''))
    throw new Error(`--snapshots-socket and --snapshots-target go together\n${USAGE}`);
  return out;
}
