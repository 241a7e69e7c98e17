// A docker-registry whose bytes are counted at the registry's side: its own access log (one line per completed
// response: request line, status, bytes written), parsed live. Optionally runs inside a network namespace.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { REGISTRY_BINARY } from '../../test/helpers/registry.js';

export interface AccessRecord {
  method: string;
  path: string;
  status: number;
  bytes: number;
  agent: string;
}

export interface CountedRegistry {
  /** host:port the registry listens on (inside the namespace when `netns` is set). */
  readonly addr: string;
  /** Every completed response since start (or the last `reset`). */
  records(): readonly AccessRecord[];
  /** Response bytes written since the last reset, after letting in-flight log lines arrive. */
  settledBytes(): Promise<number>;
  reset(): void;
  stop(): Promise<void>;
}

// 127.0.0.1 - - [03/Dec/2026:12:24:08 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"
const LINE = /"(\w+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"/;

export async function startCountedRegistry(o: {
  addr: string;
  rootDir: string;
  workDir: string;
  netns?: string;
}): Promise<CountedRegistry> {
  const config = join(o.workDir, `registry-${o.addr.replace(/[^0-9a-z]/gi, '_')}.yml`);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${o.rootDir}`,
      'http:',
      `  addr: ${o.addr}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess =
    o.netns === undefined
      ? spawn(REGISTRY_BINARY, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('ip', ['netns', 'exec', o.netns, REGISTRY_BINARY, 'serve', config], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  let records: AccessRecord[] = [];
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = LINE.exec(line);
    if (m === null) return;
    records.push({
      method: m[1]!,
      path: m[2]!,
      status: Number(m[3]),
      bytes: m[4] === '-' ? 0 : Number(m[4]),
      agent: m[5]!,
    });
  });
  const probe = o.netns === undefined ? `http://${o.addr}/v2/` : undefined;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    const ok =
      probe === undefined
        ? await new Promise<boolean>((r) => {
            const c = spawn(
              'ip',
              ['netns', 'exec', o.netns!, 'ss', '-ltnH', `sport = :${o.addr.split(':')[1]}`],
              {
                stdio: ['ignore', 'pipe', 'ignore'],
              },
            );
            let out = '';
            c.stdout.on('data', (b: Buffer) => (out += b.toString()));
            c.on('exit', () => r(out.trim().length > 0));
          })
        : await fetch(probe).then(
            (r) => r.status === 200,
            () => false,
          );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry on ${o.addr} did not come up: ${stderr}`);
    }
    await sleep(50);
  }
  return {
    addr: o.addr,
    records: () => records,
    async settledBytes() {
      await sleep(150); // the access log line follows the response's last byte by microseconds
      return records.reduce((a, r) => a + r.bytes, 0);
    },
    reset() {
      records = [];
    },
    async stop() {
      if (child.exitCode !== null) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(3000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Sums records by kind of request: manifests, blobs (by digest), everything else. */
export function byPath(records: readonly AccessRecord[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of records) {
    const blob = /\/blobs\/(sha256:[0-9a-f]{12})/.exec(r.path)?.[1];
    const key = blob !== undefined ? `blob ${blob}` : r.path.includes('/manifests/') ? 'manifests' : 'other';
    out.set(key, (out.get(key) ?? 0) + r.bytes);
  }
  return out;
}
