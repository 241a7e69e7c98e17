// The cold-start benchmark's shaped link: a network namespace made for this run, a veth pair (10.233.x.0/30,
// only between this machine's namespaces) with `tc tbf` at the rate on both ends, and inside the namespace a
// counted docker-registry behind delay-relay.mjs, which adds the round-trip time (this kernel has no netem).
// Bytes are read from the veth's own counters as well. Everything is removed on close() or process exit.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { startCountedRegistry, type CountedRegistry } from './counted-registry.js';

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

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function createRttLink(o: {
  rateMbit: number;
  rttMs: number;
  registryDataDir: string;
  workDir: string;
}): Promise<RttLink> {
  const ns = `ferrycold-${process.pid}`;
  const hostIf = `fch${process.pid}`.slice(0, 15);
  const nsIf = `fcn${process.pid}`.slice(0, 15);
  const used = sh('ip', ['-o', '-4', 'addr', 'show']);
  const x = Array.from({ length: 250 }, (_, k) => (process.pid + 7 + k) % 250).find(
    (n) => !used.includes(`10.233.${n}.`),
  );
  if (x === undefined) throw new Error('no free 10.233.x.0/30 subnet');
  const hostAddr = `10.233.${x}.1`;
  const nsAddr = `10.233.${x}.2`;
  let relay: ChildProcess | undefined;
  let registry: CountedRegistry | undefined;
  const cleanup = (): void => {
    relay?.kill('SIGKILL');
    for (const args of [
      ['netns', 'del', ns],
      ['link', 'del', hostIf],
    ]) {
      try {
        execFileSync('ip', args, { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', cleanup);
  try {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    sh('ip', ['link', 'set', nsIf, 'netns', ns]);
    sh('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
    sh('ip', ['link', 'set', hostIf, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf]);
    sh('ip', ['-n', ns, 'link', 'set', nsIf, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const tbf = ['root', 'tbf', 'rate', `${o.rateMbit}mbit`, 'burst', '256kb', 'latency', '50ms'];
    sh('tc', ['qdisc', 'add', 'dev', hostIf, ...tbf]);
    sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', nsIf, ...tbf]);
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
        `netns ${ns}, veth ${hostIf} ${hostAddr} <-> ${nsIf} ${nsAddr}, tc tbf ${o.rateMbit}mbit burst 256kb on ` +
        `both ends, +${o.rttMs / 2} ms each way by a TCP delay relay in the namespace (no netem in this kernel)`,
      vethRxBytes: () => Number(readFileSync(counter, 'utf8')),
      async close() {
        child.kill('SIGTERM');
        await reg.stop();
        cleanup();
        process.off('exit', cleanup);
      },
    };
  } catch (e) {
    await registry?.stop();
    cleanup();
    process.off('exit', cleanup);
    throw e;
  }
}
