// Starts Debian's docker-registry (distribution 2.8) on a free loopback port with filesystem storage in a temp dir.
import { RegistryClient } from '../../src/registry/client.js';
import { silentLogger } from '../../src/log.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  dir: string;
  stop(): Promise<void>;
}

/** A TCP port free on 127.0.0.1 now (bound and released: a test binds it right after). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** docker-registry's config: filesystem storage under `rootDir`, quiet logs, listening on `addr`. */
export function registryConfigYaml(o: { addr: string; rootDir: string }): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${o.rootDir}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${o.addr}`,
    '',
  ].join('\n');
}

export async function startRegistry(): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BINARY)) {
    throw new Error(
      `${REGISTRY_BINARY} is missing: registry integration tests need Debian's docker-registry ` +
        '(apt-get install docker-registry). This is a prerequisite, not an optional test.',
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  writeFileSync(config, registryConfigYaml({ addr: host, rootDir: join(dir, 'data') }));
  const child = spawn(REGISTRY_BINARY, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`docker-registry exited early (${exited}): ${stderr}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer GET /v2/ on ${host} within 15 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    host,
    dir,
    async stop() {
      if (exited === undefined) {
        const gone = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
        if (exited === undefined) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The client tests push and pull with: loopback registries, generous timeouts, a couple of retries. */
export function testRegistryClient(): RegistryClient {
  return new RegistryClient({
    log: silentLogger(),
    requestTimeoutMs: 30_000,
    maxConcurrencyPerHost: 8,
    retries: 2,
  });
}
