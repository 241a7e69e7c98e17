// The cold-start benchmark's shaped link: a network namespace made for this run, a veth pair (10.233.x.0/30,
// only between this machine's namespaces) with `tc tbf` at the rate on both ends, and inside the namespace a
// counted docker-registry behind delay-relay.mjs, which adds the round-trip time (this kernel has no netem).
// Bytes are read from the veth's own counters as well. Everything is removed on close() or process exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { startCountedRegistry, type CountedRegistry } from './counted-registry.js';
import { createNetnsLink } from './netns-link.js';

export interface RttLink {
  /** host:port of the registry across the link, as clients in the root namespace reach it. */
  readonly host: string;
  readonly registry: CountedRegistry;
  readonly description: string;
  /** Bytes the namespace sent to this one over the veth (frames, headers included). */
  vethRxBytes(): number;
  close(): Promise<void>;
}

const RELAY = resolve(import.meta.dirname, 'delay-relay.mjs');

export async function createRttLink(o: {
  rateMbit: number;
  rttMs: number;
  registryDataDir: string;
  workDir: string;
}): Promise<RttLink> {
  const link = createNetnsLink({ name: 'ferrycold', ifPrefix: 'fc', rateMbit: o.rateMbit });
  const { ns, hostIf, nsIf, hostAddr, nsAddr } = link;
  let relay: ChildProcess | undefined;
  let registry: CountedRegistry | undefined;
  link.onTeardown(() => relay?.kill('SIGKILL'));
  try {
    registry = await startCountedRegistry({
      addr: '127.0.0.1:5001',
      rootDir: o.registryDataDir,
      workDir: o.workDir,
      netns: ns,
    });
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        RELAY,
        nsAddr,
        '5000',
        '127.0.0.1',
        '5001',
        String(o.rttMs / 2),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    relay = child;
    await new Promise<void>((res, rej) => {
      createInterface({ input: child.stdout }).once('line', () => res());
      child.once('exit', (c) => rej(new Error(`delay relay exited ${c}`)));
    });
    const counter = `/sys/class/net/${hostIf}/statistics/rx_bytes`;
    const reg = registry;
    return {
      host: `${nsAddr}:5000`,
      registry: reg,
      description:
        `netns ${ns}, veth ${hostIf} ${hostAddr} <-> ${nsIf} ${nsAddr}, ${link.shaping}, ` +
        `+${o.rttMs / 2} ms each way by a TCP delay relay in the namespace (no netem in this kernel)`,
      vethRxBytes: () => Number(readFileSync(counter, 'utf8')),
      async close() {
        child.kill('SIGTERM');
        await reg.stop();
        link.close();
      },
    };
  } catch (e) {
    await registry?.stop();
    link.close();
    throw e;
  }
}
