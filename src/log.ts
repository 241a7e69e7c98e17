// The root pino logger; components take `log.child({ component })`. Credentials are redacted by path. The level
// can be switched to debug and back at run time (SIGUSR2 in the daemon), children included.
import { pino, destination, levels, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'password',
  'secret',
  'token',
  '*.password',
  '*.secret',
  '*.token',
];

export type LogTo = 'auto' | 'stdout' | 'stderr';

export interface CreateLoggerOptions {
  level?: string;
  /** A file descriptor or path; overrides `to`. */
  destination?: number | string;
  /** `auto`: stdout when journald holds our output (systemd sets JOURNAL_STREAM), else stderr (default). */
  to?: LogTo;
}

interface LevelState {
  readonly base: number;
  current: number;
}

/** Per root logger: pino children copy their level when made, so run-time changes go through a shared hook. */
const levelStates = new WeakMap<Logger, LevelState>();

function levelValue(name: string): number {
  return name === 'silent' ? Number.POSITIVE_INFINITY : (levels.values[name] ?? levels.values['info']!);
}

export function logDestination(to: LogTo = 'stderr', env = process.env): 1 | 2 {
  if (to === 'stdout') return 1;
  if (to === 'auto' && env['JOURNAL_STREAM'] !== undefined) return 1;
  return 2;
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const level = options.level ?? process.env['FERRY_LOG_LEVEL'] ?? 'info';
  const state: LevelState = { base: levelValue(level), current: levelValue(level) };
  // pino itself lets debug through so a toggle can reach existing children; the hook applies the real level.
  const floor = state.base > levels.values['debug']! ? 'debug' : level;
  const log = pino(
    {
      level: floor,
      base: { service: 'ferry' },
      redact: { paths: REDACT, censor: '[redacted]' },
      hooks: {
        logMethod(args, method, lvl) {
          if (lvl >= state.current) method.apply(this, args);
        },
      },
    },
    destination({ dest: options.destination ?? logDestination(options.to), sync: false }),
  );
  levelStates.set(log, state);
  return log;
}

/**
 * Switches a root logger (children included) between its configured level and debug — or info, when it is
 * configured at debug or below. Returns the new level.
 */
export function toggleDebug(log: Logger): string {
  const state = levelStates.get(log);
  if (state === undefined) return log.level;
  const debug = levels.values['debug']!;
  const alternative = state.base > debug ? debug : levels.values['info']!;
  state.current = state.current === state.base ? alternative : state.base;
  return levels.labels[state.current] ?? 'silent';
}

/** A logger that drops everything: for tests and library use without a daemon. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
