// Reads a running daemon's status over its unix socket (GET /status): what `ferry status` and `ferry doctor` use.
import { request } from 'node:http';
import { FerryError, FormatError, UnavailableError } from '../errors.js';
import { STATUS_VERSION, type DaemonStatus } from './status-types.js';

export interface FetchStatusOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export function fetchStatus(socketPath: string, o: FetchStatusOptions = {}): Promise<DaemonStatus> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        path: '/status',
        method: 'GET',
        timeout: o.timeoutMs ?? 10_000,
        ...(o.signal !== undefined ? { signal: o.signal } : {}),
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (b: Buffer) => parts.push(b));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          if (res.statusCode !== 200)
            return reject(
              new UnavailableError(`ferry daemon at ${socketPath} answered HTTP ${res.statusCode}`),
            );
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch (e) {
            return reject(
              new FormatError(`ferry daemon at ${socketPath} sent unreadable status`, { cause: e }),
            );
          }
          const version = (body as { version?: unknown }).version;
          if (version !== STATUS_VERSION)
            return reject(
              new FormatError(`ferry daemon at ${socketPath} speaks status version ${String(version)}`),
            );
          resolve(body as DaemonStatus);
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new UnavailableError(`ferry daemon at ${socketPath} did not answer`)),
    );
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof FerryError) return reject(e);
      const hint =
        e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
          ? 'is `ferry daemon` running (systemctl status ferry)?'
          : e.code === 'EACCES'
            ? 'the status socket is mode 0600: run as the daemon user (root)'
            : e.message;
      reject(new UnavailableError(`cannot reach the ferry daemon at ${socketPath}: ${hint}`, { cause: e }));
    });
    req.end();
  });
}
