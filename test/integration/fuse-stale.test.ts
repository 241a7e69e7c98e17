// Stale FUSE mounts: a mounting process killed with SIGKILL leaves a dead mount (ENOTCONN); cleanStaleMounts
// finds it via /proc/self/mountinfo and detaches it with fusermount -uz, leaving live mounts alone.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanStaleMounts, isStale } from '../../src/fuse/stale.js';
import { fuseMountsUnder } from '../../src/os/mountinfo.js';
import { silentLogger } from '../../src/log.js';
import { requireRootAndFuse, run, tempDir } from '../fuse/fuse-harness.js';
import { processGone } from '../helpers/wait.js';

requireRootAndFuse();

function mountInChild(mountpoint: string): Promise<number> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fuse/fixtures/mount-child.ts', mountpoint],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('child did not mount within 30 s')), 30_000);
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('mounted')) {
        clearTimeout(t);
        resolve(child.pid!);
      }
    });
    child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

describe('stale mount cleanup', () => {
  const dir = tempDir('ferry-stale-');
  const pids: number[] = [];
  afterAll(async () => {
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const m of await fuseMountsUnder(dir.path)) await run('fusermount', ['-uz', m.mountpoint]);
    dir.remove();
  });

  it('detaches dead mounts and leaves live ones', async () => {
    const dead = join(dir.path, 'dead');
    const live = join(dir.path, 'live');
    const deadPid = await mountInChild(dead);
    pids.push(deadPid, await mountInChild(live));
    expect((await run('cat', [join(dead, 'hello')])).stdout).toBe('hi\n');
    process.kill(deadPid, 'SIGKILL');
    await processGone(deadPid);
    const r = await run('stat', [dead]);
    expect(r.stderr).toMatch(/Transport endpoint is not connected/);
    expect(await isStale(dead)).toBe(true);
    expect((await fuseMountsUnder(dir.path)).map((m) => m.mountpoint).sort()).toEqual([dead, live]);

    expect(await cleanStaleMounts({ dir: dir.path, log: silentLogger() })).toEqual([dead]);
    expect((await fuseMountsUnder(dir.path)).map((m) => m.mountpoint)).toEqual([live]);
    expect((await run('cat', [join(live, 'hello')])).stdout).toBe('hi\n');
  });
});
