// The root pino logger; components take `log.child({ component })`. Credentials are redacted by path. The level
// can be switched to debug and back at run time (SIGUSR2 in the daemon), children included. JSON lines, except
// one short line per record on a terminal; under journald each line carries its syslog priority.
import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, destination, levels, stdSerializers, type Logger } from 'pino';

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

/** `auto`: human-readable lines when the destination is a terminal, JSON otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface CreateLoggerOptions {
  level?: string;
  /** A file descriptor or path; overrides `to`. */
  destination?: number | string;
  /** `auto`: stdout when journald holds our output (systemd sets JOURNAL_STREAM), else stderr (default). */
  to?: LogTo;
  /** Default: FERRY_LOG_FORMAT, else `auto`. */
  format?: LogFormat;
  /** Read for JOURNAL_STREAM and FERRY_LOG_FORMAT; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
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

/**
 * Whether `fd` is the stream systemd connected to the journal: it sets JOURNAL_STREAM to that stream's
 * `device:inode`, and a child whose output was redirected elsewhere inherits the variable, so compare.
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const want = env['JOURNAL_STREAM'];
  if (want === undefined) return false;
  try {
    const st = fstatSync(fd, { bigint: true }); // once, when the logger is made
    return want === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/** sd-daemon(3) priority prefixes journald reads from a service's output: pino level → syslog priority. */
function journalPriority(level: number): number {
  if (level >= levels.values['fatal']!) return 2;
  if (level >= levels.values['error']!) return 3;
  if (level >= levels.values['warn']!) return 4;
  if (level >= levels.values['info']!) return 6;
  return 7;
}

/** Prefixes each line of a record with its priority (`<4>` for a warning). */
export function journalLine(record: string, level: number): string {
  const prefix = `<${journalPriority(level)}>`;
  return record.replace(/^(?=.)/gm, prefix);
}

/** Record keys the pretty line shows in its fixed columns, or not at all. */
const PRETTY_FIXED = new Set(['level', 'time', 'msg', 'component', 'service', 'pid', 'hostname', 'err']);

function prettyValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

/** The stack of a serialized error and of each of its causes. */
function prettyError(err: unknown, depth = 0): string {
  if (typeof err !== 'object' || err === null || depth > 8) return '';
  const e = err as { stack?: unknown; message?: unknown; cause?: unknown };
  const text = typeof e.stack === 'string' ? e.stack : String(e.message);
  const lines = `${depth > 0 ? 'caused by: ' : ''}${text}`.split('\n').map((l) => `    ${l}`);
  return `\n${lines.join('\n')}${prettyError(e.cause, depth + 1)}`;
}

/** `HH:MM:SS LEVEL component msg key=value…` (then the error's stack, indented) for one JSON record. */
export function prettyLine(record: string): string {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(record) as Record<string, unknown>;
  } catch {
    return record;
  }
  const t = new Date(typeof r['time'] === 'number' ? r['time'] : Date.now());
  const hms = [t.getHours(), t.getMinutes(), t.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const level = (levels.labels[Number(r['level'])] ?? String(r['level'])).toUpperCase().padEnd(5);
  const head = [hms, level];
  if (typeof r['component'] === 'string') head.push(r['component']);
  const msg = r['msg'];
  if (msg !== undefined) head.push(typeof msg === 'string' ? msg : JSON.stringify(msg));
  const err = r['err'];
  if (err !== undefined)
    head.push(
      `err=${prettyValue(typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : err)}`,
    );
  for (const [k, v] of Object.entries(r)) if (!PRETTY_FIXED.has(k)) head.push(`${k}=${prettyValue(v)}`);
  return `${head.join(' ')}${prettyError(err)}\n`;
}

/** What each serialized record goes through before it is written, or undefined for plain JSON lines. */
function lineRewriter(
  dest: number | string,
  format: LogFormat,
  env: NodeJS.ProcessEnv,
): ((record: string) => string) | undefined {
  const fd = typeof dest === 'number' ? dest : undefined;
  const pretty = format === 'pretty' || (format === 'auto' && fd !== undefined && isatty(fd));
  const journal = fd !== undefined && isJournalStream(fd, env);
  if (!pretty && !journal) return undefined;
  return (record) => {
    const text = pretty ? prettyLine(record) : record;
    // pino writes `{"level":N,` first; the journal prefix needs only that.
    return journal ? journalLine(text, Number(/^\{"level":(\d+)/.exec(record)?.[1] ?? 30)) : text;
  };
}

function formatFrom(env: NodeJS.ProcessEnv): LogFormat {
  const f = env['FERRY_LOG_FORMAT'];
  return f === 'json' || f === 'pretty' ? f : 'auto';
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const level = options.level ?? env['FERRY_LOG_LEVEL'] ?? 'info';
  const state: LevelState = { base: levelValue(level), current: levelValue(level) };
  // pino itself lets debug through so a toggle can reach existing children; the hook applies the real level.
  const floor = state.base > levels.values['debug']! ? 'debug' : level;
  const dest = options.destination ?? logDestination(options.to, env);
  const rewrite = lineRewriter(dest, options.format ?? formatFrom(env), env);
  const log = pino(
    {
      level: floor,
      base: { service: 'ferry' },
      redact: { paths: REDACT, censor: '[redacted]' },
      // `{ err }` keeps the error's type, stack and own fields, and its cause as a nested error.
      serializers: { err: stdSerializers.errWithCause },
      hooks: {
        logMethod(args, method, lvl) {
          if (lvl >= state.current) method.apply(this, args);
        },
        ...(rewrite === undefined ? {} : { streamWrite: rewrite }),
      },
    },
    destination({ dest, sync: false }),
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
