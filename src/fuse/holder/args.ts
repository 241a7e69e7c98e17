// Command-line options of `ferry fuse-holder`, parsed by hand: the holder must not load commander.

export interface HolderArgs {
  socket: string;
  maxMounts: number;
  orphanTimeoutMs: number;
  idleExitMs: number;
  logLevel: string;
}

const USAGE =
  'usage: ferry fuse-holder --socket <path> [--max-mounts <n>] [--orphan-timeout-ms <ms>] ' +
  '[--idle-exit-ms <ms>] [--log-level <level>]';

/** Parses `fuse-holder`'s own options (argv after the subcommand); throws with the usage on anything else. */
export function parseHolderArgs(argv: readonly string[]): HolderArgs {
  const out: HolderArgs = {
    socket: '',
    maxMounts: 512,
    orphanTimeoutMs: 600_000,
    idleExitMs: 30_000,
    logLevel: 'info',
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
      default:
        throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  if (out.socket === '') throw new Error(`--socket is required\n${USAGE}`);
  return out;
}
