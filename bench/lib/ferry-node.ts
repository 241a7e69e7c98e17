// A "new node" running `ferry mount` as a child process, with its resident memory sampled from /proc while
// it serves, and a clean stop that returns what the mount reported at exit.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ferry, ferryEnv, startMount, type FerryEnv, type MountEvent } from '../../test/helpers/ferry-cli.js';
import { elapsed } from './report.js';

export interface RssReading {
  /** Highest VmRSS seen by the sampler, KiB. */
  peakKb: number;
  /** The kernel's VmHWM (peak RSS over the process lifetime) at the last sample, KiB. */
  hwmKb: number;
  samples: number;
}

/** Polls /proc/<pid>/status for VmRSS/VmHWM until stopped (the last good sample survives the process exit). */
export class RssSampler {
  private peakKb = 0;
  private hwmKb = 0;
  private samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    intervalMs = 100,
  ) {
    this.timer = setInterval(() => void this.sample(), intervalMs);
    this.timer.unref();
  }

  async sample(): Promise<void> {
    const text = await readFile(`/proc/${this.pid}/status`, 'utf8').catch(() => '');
    const rss = /VmRSS:\s+(\d+) kB/.exec(text);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(text);
    if (rss) this.peakKb = Math.max(this.peakKb, Number(rss[1]));
    if (hwm) this.hwmKb = Math.max(this.hwmKb, Number(hwm[1]));
    if (rss) this.samples++;
  }

  reading(): RssReading {
    return { peakKb: this.peakKb, hwmKb: this.hwmKb, samples: this.samples };
  }

  stop(): RssReading {
    clearInterval(this.timer);
    return this.reading();
  }
}

export interface LazyNode {
  env: FerryEnv;
  target: string;
  pid: number;
  /** Spawn of `ferry mount` to its `mounted` event. */
  mountMs: number;
  mounted: MountEvent;
  rss: RssSampler;
  /** VmRSS right after the `mounted` event (indexes loaded, nothing read yet), KiB. */
  rssAfterMountKb: number;
  /** `ferry umount`, then waits for the mount process to exit; returns its final event and RSS. */
  stop(): Promise<{ unmounted: MountEvent | undefined; rss: RssReading; stderr: string }>;
}

/**
 * Mounts `ref` on a fresh node (empty state and cache) and starts sampling the mount process's RSS. The node
 * trusts the default signing key of the test helpers unless `trustedKeys` says otherwise.
 */
export async function mountOnNewNode(ref: string, extraToml = '', trustedKeys?: string[]): Promise<LazyNode> {
  const env = trustedKeys === undefined ? ferryEnv(extraToml) : ferryEnv(extraToml, '', trustedKeys);
  const target = join(env.dir, 'rootfs');
  const t0 = performance.now();
  const mount = await startMount(ref, target, env, 600_000);
  const mountMs = elapsed(t0);
  const pid = mount.proc.pid;
  if (pid === undefined) throw new Error('ferry mount has no pid');
  const rss = new RssSampler(pid);
  await rss.sample();
  const rssAfterMountKb = rss.reading().peakKb;
  return {
    env,
    target,
    pid,
    mountMs,
    mounted: mount.mounted,
    rss,
    rssAfterMountKb,
    async stop() {
      await rss.sample();
      await ferry(['umount', target], env).catch(() => mount.proc.kill('SIGTERM'));
      const exit = await mount.exited;
      return { unmounted: exit.unmounted, rss: rss.stop(), stderr: exit.stderr };
    },
  };
}

/** `{ memory, disk, origin }` chunk counters from the mount's `unmounted` event. */
export function servedFrom(
  event: MountEvent | undefined,
): Record<'memory' | 'disk' | 'origin', { chunks: number; bytes: number }> {
  const served = (event?.['served'] ?? {}) as Record<string, { chunks?: number; bytes?: number } | undefined>;
  const tier = (k: string) => ({ chunks: served[k]?.chunks ?? 0, bytes: served[k]?.bytes ?? 0 });
  return { memory: tier('memory'), disk: tier('disk'), origin: tier('origin') };
}

export const fmtRss = (kb: number): string => `${((kb * 1024) / 1e6).toFixed(0)} MB`;
