// The FUSE holder for real: `ferry fuse-holder` keeps a /dev/fuse mount while stand-in daemons
// (test/load/holder-client/daemon.ts) come and go with kill -9. Reads never fail and never see wrong bytes; a
// read the dead daemon had taken is replayed to its successor (no FUSE_NOTIFY_RESEND); SIGTERM and the orphan
// timeout unmount. Needs root and `npm run build` (dist/fuse/holder/main.js).
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

if (process.getuid?.() !== 0)
  throw new Error('the holder test must run as root (it mounts FUSE with mount(8))');
const ROOT = resolve(import.meta.dirname, '../..');
if (!existsSync(join(ROOT, 'dist/fuse/holder/main.js')))
  throw new Error('dist/fuse/holder/main.js is missing: run `npm run build` before the integration tests');

const run = promisify(execFile);
const DAEMON = join(ROOT, 'test/load/holder-client/daemon.ts');
const READER = join(ROOT, 'test/load/holder-client/reader.mjs');
const children: ChildProcess[] = [];
const mounts: string[] = [];

const holders: ChildProcess[] = [];

afterEach(async () => {
  // SIGTERM first: the holder unmounts what it holds.
  for (const c of holders.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    c.kill('SIGTERM');
    await Promise.race([exited(c), new Promise((r) => setTimeout(r, 5000))]);
  }
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  for (const m of mounts.splice(0)) if (isMounted(m)) spawnSync('umount', ['-l', m]);
});

function isMounted(mnt: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === mnt && / - fuse\.ferry /.test(l));
}

function exited(c: ChildProcess): Promise<number | null> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(c.exitCode);
  return new Promise((r) => c.once('exit', (code) => r(code)));
}

interface Holder {
  proc: ChildProcess;
  socket: string;
  mnt: string;
  logs: Array<Record<string, unknown>>;
}

/** Without UV_THREADPOOL_SIZE in `env`, bin/ferry.js runs the holder as its child (see there). */
function startHolder(extra: string[] = [], env: Record<string, string> = {}): Holder {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-holder-it-'));
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  mounts.push(mnt);
  const socket = join(dir, 'run', 'holder.sock');
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bin/ferry.js'), 'fuse-holder', '--socket', socket, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  holders.push(proc);
  const logs: Array<Record<string, unknown>> = [];
  let stdout = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.once('exit', () => expect(stdout, 'the holder prints nothing on stdout').toBe(''));
  createInterface({ input: proc.stderr }).on('line', (l) =>
    logs.push(JSON.parse(l) as Record<string, unknown>),
  );
  return { proc, socket, mnt, logs };
}

interface Daemon {
  proc: ChildProcess;
  mode: string;
  holderPid: number;
}

/** Starts a stand-in daemon and resolves once it serves (fresh mount or attached to the inherited one). */
async function startDaemon(h: Holder, env: Record<string, string> = {}, mnts = h.mnt): Promise<Daemon> {
  const proc = spawn(process.execPath, ['--import', 'tsx', DAEMON, h.socket, mnts], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  children.push(proc);
  const line = await new Promise<string>((res, rej) => {
    createInterface({ input: proc.stdout }).once('line', res);
    proc.once('exit', (code) => rej(new Error(`daemon exited ${code} before serving`)));
  });
  const m = /^serving (\w+) \d+ holder=(\d+)$/.exec(line);
  if (!m) throw new Error(`unexpected daemon output ${line}`);
  return { proc, mode: m[1]!, holderPid: Number(m[2]) };
}

async function untilHolderUp(h: Holder): Promise<void> {
  for (let i = 0; i < 200 && !h.logs.some((l) => l['msg'] === 'FUSE holder listening'); i++)
    await new Promise((r) => setTimeout(r, 25));
}

const logged = (h: Holder, msg: string): Array<Record<string, unknown>> =>
  h.logs.filter((l) => l['msg'] === msg);

describe('ferry fuse-holder', () => {
  it('keeps a mount readable, every byte right, across three kill -9 of the daemon', async () => {
    const h = startHolder([], { UV_THREADPOOL_SIZE: '16' });
    await untilHolderUp(h);
    let d = await startDaemon(h);
    expect(d.mode).toBe('fresh');
    const holderPid = d.holderPid;
    expect(holderPid).toBe(h.proc.pid); // bin/ferry.js runs the holder in its own process, no wrapper
    const reader = run(process.execPath, [READER, join(h.mnt, 'data'), '9000'], { timeout: 60_000 });
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      d.proc.kill('SIGKILL');
      await exited(d.proc);
      d = await startDaemon(h);
      expect(d.mode).toBe('attached');
      expect(d.holderPid).toBe(holderPid); // the same holder all along
    }
    const r = JSON.parse((await reader).stdout) as {
      reads: number;
      errors: string[];
      mismatches: number;
      maxMs: number;
    };
    const attaches = logged(h, 'attached');
    console.log(
      `holder: ${r.reads} reads across 3 daemon kills, max ${Math.round(r.maxMs)} ms, replayed ` +
        attaches.map((a) => `${String(a['replayed'])}+${String(a['queued'])}`).join(','),
    );
    expect(r.errors).toEqual([]); // never ENOTCONN / EIO
    expect(r.mismatches).toBe(0);
    expect(r.reads).toBeGreaterThan(100);
    expect(r.maxMs).toBeLessThan(10_000); // a read waited for one daemon start, not forever
    expect(attaches).toHaveLength(3);
    expect(logged(h, 'daemon disconnected')).toHaveLength(3);
    expect(h.proc.exitCode).toBeNull();
    expect(isMounted(h.mnt)).toBe(true);
  });

  it('a read the killed daemon had taken and not answered is replayed to its successor', async () => {
    const stall = join(mkdtempSync(join(tmpdir(), 'ferry-holder-stall-')), 'stall');
    const h = startHolder();
    await untilHolderUp(h);
    const d = await startDaemon(h, { HOLDER_STALL_FILE: stall });
    await run('stat', [join(h.mnt, 'data')], { timeout: 10_000 });
    writeFileSync(stall, '');
    const t0 = performance.now();
    const dd = run(
      'dd',
      [`if=${join(h.mnt, 'data')}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct'],
      {
        timeout: 30_000,
      },
    );
    await new Promise((r) => setTimeout(r, 500)); // the daemon has the READ and sits on it for 5 s
    rmSync(stall);
    d.proc.kill('SIGKILL');
    await exited(d.proc);
    const next = await startDaemon(h); // no FUSE_NOTIFY_RESEND anywhere: the holder replays
    expect(next.mode).toBe('attached');
    await dd;
    const ms = performance.now() - t0;
    const attach = logged(h, 'attached')[0]!;
    console.log(`holder: in-flight read answered by the successor after ${Math.round(ms)} ms`);
    expect(attach['replayed']).toBeGreaterThanOrEqual(1);
    expect(logged(h, 'daemon disconnected')[0]!['unanswered']).toBeGreaterThanOrEqual(1);
    expect(ms).toBeLessThan(15_000); // answered, not hung in D state (it would hang forever)
  });

  it('a second daemon connecting replaces the first, which is told and stops', async () => {
    const h = startHolder();
    await untilHolderUp(h);
    const first = await startDaemon(h);
    const second = await startDaemon(h);
    expect(second.mode).toBe('attached');
    expect(await exited(first.proc)).toBe(3); // its onClose fired: the holder closed it
    expect(readFileSync(join(h.mnt, 'data')).subarray(0, 4)).toEqual(Buffer.from([0, 31, 62, 93]));
    expect(logged(h, 'daemon disconnected')[0]!['reason']).toBe('replaced by a new daemon connection');
  });

  it("serves more mounts than libuv's default 4 pool threads (each mount parks one in a read)", async () => {
    const h = startHolder(['--max-mounts', '12']);
    await untilHolderUp(h);
    const extra = Array.from({ length: 9 }, (_, i) => join(h.mnt, '..', `m${i}`));
    for (const m of extra) mkdirSync(m);
    mounts.push(...extra);
    const all = [h.mnt, ...extra];
    await startDaemon(h, {}, all.join(','));
    const first = await Promise.all(
      all.map((m) => run('head', ['-c', '4', join(m, 'data')], { encoding: 'buffer', timeout: 10_000 })),
    );
    for (const r of first) expect(r.stdout).toEqual(Buffer.from([0, 31, 62, 93]));
    expect(
      h.logs.filter((l) => l['msg'] === 'libuv pool too small for --max-mounts; set UV_THREADPOOL_SIZE'),
    ).toEqual([]);
  });

  it('SIGTERM unmounts and exits 0', async () => {
    const h = startHolder();
    await untilHolderUp(h);
    await startDaemon(h);
    expect(isMounted(h.mnt)).toBe(true);
    h.proc.kill('SIGTERM');
    expect(await exited(h.proc)).toBe(0);
    expect(isMounted(h.mnt)).toBe(false);
    expect(logged(h, 'unmounted')).toHaveLength(1);
  });

  it('with mounts and no daemon for --orphan-timeout-ms, unmounts everything and exits', async () => {
    const h = startHolder(['--orphan-timeout-ms', '1500']);
    await untilHolderUp(h);
    const d = await startDaemon(h);
    const t0 = performance.now();
    d.proc.kill('SIGKILL');
    expect(await exited(h.proc)).toBe(0);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(1400);
    expect(ms).toBeLessThan(6000);
    expect(isMounted(h.mnt)).toBe(false);
    expect(h.logs.some((l) => l['reason'] === 'orphaned')).toBe(true);
  });

  it('with no mounts and no daemon for --idle-exit-ms, exits', async () => {
    const h = startHolder(['--idle-exit-ms', '500']);
    expect(await exited(h.proc)).toBe(0);
    expect(h.logs.some((l) => l['reason'] === 'idle')).toBe(true);
  });
});
