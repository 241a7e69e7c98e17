// A shaped "registry link" for benchmarks: a network namespace created for this run, a veth pair with private
// 10.233.x.0/30 addresses that exist only between this machine's namespaces, `tc tbf` on both ends, and a
// docker-registry inside the namespace serving the storage of the loopback registry. Falls back to a loopback
// token-bucket relay when tbf is unavailable. Everything is removed on close() or process exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REGISTRY_BINARY, registryConfigYaml } from '../../test/helpers/registry.js';
import { createNetnsLink } from './netns-link.js';
import { ThrottleRelay } from './throttle-relay.js';

export interface ShapedLink {
  /** `tbf`: kernel shaping on a veth into a netns; `app`: the token-bucket relay fallback. */
  readonly mode: 'tbf' | 'app';
  /** host:port a client (or FaultProxy) in this namespace connects to, to reach the registry over the link. */
  readonly registryHost: string;
  readonly description: string;
  close(): Promise<void>;
}

export interface ShapedLinkOptions {
  rateMbit: number;
  /** The loopback registry's storage root (`<TestRegistry.dir>/data`), served again inside the namespace. */
  registryDataDir: string;
  /** The loopback registry, used by the `app` fallback. */
  loopbackRegistryHost: string;
  /** Scratch dir for the namespaced registry's config. */
  workDir: string;
  log: (line: string) => void;
}

const BURST_BYTES = 256 * 1024;

export async function createShapedLink(options: ShapedLinkOptions): Promise<ShapedLink> {
  const forced = process.env['FERRY_BENCH_SHAPING'];
  if (forced !== 'app') {
    try {
      return await createTbfLink(options);
    } catch (e) {
      options.log(
        `kernel shaping unavailable (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); ` +
          'falling back to the application-level token bucket (NOT kernel shaping)',
      );
    }
  }
  const relay = await new ThrottleRelay({
    upstream: options.loopbackRegistryHost,
    rateBitsPerSec: options.rateMbit * 1e6,
    burstBytes: BURST_BYTES,
  }).start();
  return {
    mode: 'app',
    registryHost: relay.host,
    description: `loopback token-bucket relay at ${options.rateMbit} Mbit/s (application-level, not kernel shaping)`,
    close: () => relay.stop(),
  };
}

async function createTbfLink(options: ShapedLinkOptions): Promise<ShapedLink> {
  const link = createNetnsLink({ name: 'ferrybench', ifPrefix: 'fb', rateMbit: options.rateMbit });
  const { ns, hostIf, nsIf, hostAddr, nsAddr } = link;
  let registry: ChildProcess | undefined;
  link.onTeardown(() => registry?.kill('SIGKILL'));
  try {
    const host = `${nsAddr}:5000`;
    const config = join(options.workDir, `registry-${ns}.yml`);
    writeFileSync(config, registryConfigYaml({ addr: host, rootDir: options.registryDataDir }));
    const child = spawn('ip', ['netns', 'exec', ns, REGISTRY_BINARY, 'serve', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    registry = child;
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`namespaced docker-registry exited: ${stderr}`);
      const ok = await fetch(`http://${host}/v2/`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`namespaced docker-registry did not answer: ${stderr}`);
      await sleep(50);
    }
    return {
      mode: 'tbf',
      registryHost: host,
      description: `netns ${ns}, veth ${hostIf} ${hostAddr} <-> ${nsIf} ${nsAddr}, ${link.shaping}`,
      close: async () => {
        const gone = new Promise<void>((r) =>
          child.exitCode !== null ? r() : child.once('exit', () => r()),
        );
        child.kill('SIGTERM');
        await Promise.race([gone, sleep(3000)]);
        link.close();
      },
    };
  } catch (e) {
    link.close();
    throw e;
  }
}
