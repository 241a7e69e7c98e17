// CPU seconds per thread of a process from /proc/<pid>/task/*/stat (utime + stime), grouped by thread name, so a
// benchmark can tell the event loop's time from decode workers', libuv's pool and V8's own threads.
import { readdir, readFile } from 'node:fs/promises';

const TICKS = 100; // USER_HZ on Linux

/** Thread id → { name, cpu seconds } at this moment; threads that exit between listing and reading are skipped. */
export async function threadCpu(pid: number): Promise<Map<string, { name: string; s: number }>> {
  const out = new Map<string, { name: string; s: number }>();
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tids) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    const close = stat.lastIndexOf(')');
    if (close < 0) continue;
    const name = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    // After "pid (comm) ": state is field 3, utime 14, stime 15 → indexes 11 and 12 here.
    out.set(tid, { name, s: (Number(f[11]) + Number(f[12])) / TICKS });
  }
  return out;
}

/**
 * CPU seconds used between two readings, by role: `main` (the thread whose id is the pid), and every other
 * thread grouped by its name (decode workers are named by Node, libuv's pool `libuv-worker`, V8 `V8 …`).
 */
export function cpuDelta(
  pid: number,
  before: Map<string, { name: string; s: number }>,
  after: Map<string, { name: string; s: number }>,
): Array<{ role: string; threads: number; s: number }> {
  const roles = new Map<string, { threads: number; s: number }>();
  for (const [tid, a] of after) {
    const d = a.s - (before.get(tid)?.s ?? 0);
    const role = tid === String(pid) ? 'main' : a.name;
    const r = roles.get(role) ?? { threads: 0, s: 0 };
    r.threads++;
    r.s += d;
    roles.set(role, r);
  }
  return [...roles.entries()].map(([role, r]) => ({ role, ...r })).sort((x, y) => y.s - x.s);
}
