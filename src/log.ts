// The root pino logger; components take `log.child({ component })`. Credentials are redacted by path.
import { pino, destination, type Logger } from 'pino';

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

export function createLogger(options: { level?: string; destination?: number | string } = {}): Logger {
  const level = options.level ?? process.env['FERRY_LOG_LEVEL'] ?? 'info';
  return pino(
    { level, base: { service: 'ferry' }, redact: { paths: REDACT, censor: '[redacted]' } },
    destination({ dest: options.destination ?? 2, sync: false }),
  );
}

/** A logger that drops everything: for tests and library use without a daemon. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
