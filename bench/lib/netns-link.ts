// A network namespace made for one benchmark run, joined to this one by a veth pair with private 10.233.x.0/30
// addresses (they exist only between this machine's namespaces) and `tc tbf` at the link's rate on both ends.
// Removed on close(), on process exit and on SIGINT/SIGTERM, with whatever the caller attached to it.
import { execFileSync } from 'node:child_process';

export interface NetnsLink {
  readonly ns: string;
  readonly hostIf: string;
  readonly nsIf: string;
  readonly hostAddr: string;
  readonly nsAddr: string;
  /** The tc parameters, as a benchmark prints them. */
  readonly shaping: string;
  /** Runs `fn` first when the link is torn down (stop what runs inside the namespace). */
  onTeardown(fn: () => void): void;
  /** Deletes the namespace and the veth; safe to call twice. */
  close(): void;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A /30 in 10.233.0.0/16 that no interface of this namespace uses yet. */
function freeSubnet(): number {
  const used = sh('ip', ['-o', '-4', 'addr', 'show']);
  for (let k = 0; k < 250; k++) {
    const x = (process.pid + k) % 250;
    if (!used.includes(`10.233.${x}.`)) return x;
  }
  throw new Error('no free 10.233.x.0/30 subnet for the benchmark link');
}

/** `name` names the namespace (`<name>-<pid>`); `ifPrefix` (3 letters) the two interfaces. */
export function createNetnsLink(o: { name: string; ifPrefix: string; rateMbit: number }): NetnsLink {
  const ns = `${o.name}-${process.pid}`;
  const hostIf = `${o.ifPrefix}h${process.pid}`.slice(0, 15);
  const nsIf = `${o.ifPrefix}n${process.pid}`.slice(0, 15);
  const x = freeSubnet();
  const hostAddr = `10.233.${x}.1`;
  const nsAddr = `10.233.${x}.2`;
  const teardown: Array<() => void> = [];
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    process.off('exit', close);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const fn of teardown) fn();
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
  const onSignal = (): void => {
    close();
    process.exit(130);
  };
  process.once('exit', close);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const burst = '256kb';
  const tbf = ['root', 'tbf', 'rate', `${o.rateMbit}mbit`, 'burst', burst, 'latency', '50ms'];
  try {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    sh('ip', ['link', 'set', nsIf, 'netns', ns]);
    sh('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
    sh('ip', ['link', 'set', hostIf, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${nsAddr}/30`, 'dev', nsIf]);
    sh('ip', ['-n', ns, 'link', 'set', nsIf, 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('tc', ['qdisc', 'add', 'dev', hostIf, ...tbf]);
    sh('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', nsIf, ...tbf]);
  } catch (e) {
    close();
    throw e;
  }
  return {
    ns,
    hostIf,
    nsIf,
    hostAddr,
    nsAddr,
    shaping: `tc tbf rate ${o.rateMbit}mbit burst ${burst} latency 50ms on both ends`,
    onTeardown: (fn) => void teardown.push(fn),
    close,
  };
}
