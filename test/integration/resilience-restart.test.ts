// The mechanism docs/restart.md builds on, on this kernel, without native code: a long-lived holder keeps the
// /dev/fuse descriptor and mounts with mount(8) `-o fd=3`; the FUSE server is a replaceable child that
// inherits it. A reader keeps reading across kill -9 of the server (no ENOTCONN, every byte right), and a read
// the dead server had taken but not answered is answered by its successor (FUSE_NOTIFY_RESEND, Linux 6.9+).
// This is a protocol prototype (test/load/fuse-takeover/), not Ferry's fuse-native mount: see docs/restart.md.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

if (process.getuid?.() !== 0)
  throw new Error('the restart test must run as root (it mounts FUSE with mount(8))');

const run = promisify(execFile);
const DIR = resolve(import.meta.dirname, '../load/fuse-takeover');
let holder: ChildProcess | undefined;

interface Holder {
  mnt: string;
  /** Pids of the servers started so far, latest last. */
  servers: number[];
  serverStarted(): Promise<number>;
}

async function startHolder(env: Record<string, string> = {}): Promise<Holder> {
  const mnt = join(mkdtempSync(join(tmpdir(), 'ferry-restart-')), 'mnt');
  holder = spawn(process.execPath, [join(DIR, 'holder.mjs'), mnt, join(DIR, 'server.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  const servers: number[] = [];
  const waiters: Array<(pid: number) => void> = [];
  let mounted: () => void = () => undefined;
  const up = new Promise<void>((r) => (mounted = r));
  createInterface({ input: holder.stdout! }).on('line', (l) => {
    if (l === 'mounted') mounted();
    const m = /^server (\d+)$/.exec(l);
    if (m) {
      servers.push(Number(m[1]));
      waiters.shift()?.(Number(m[1]));
    }
  });
  await up;
  return { mnt, servers, serverStarted: () => new Promise((r) => waiters.push(r)) };
}

afterEach(async () => {
  if (holder?.pid !== undefined) {
    holder.kill('SIGTERM'); // the holder unmounts (lazily) and exits
    await new Promise((r) => holder!.once('exit', r));
  }
  holder = undefined;
});

describe('FUSE takeover across a server restart (holder + replaceable server)', () => {
  it('a reader keeps reading, every byte right, across three kill -9 of the server', async () => {
    const h = await startHolder();
    const reader = run(process.execPath, [join(DIR, 'reader.mjs'), join(h.mnt, 'data'), '6000'], {
      timeout: 30_000,
    });
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1200));
      const next = h.serverStarted();
      process.kill(h.servers.at(-1)!, 'SIGKILL');
      await next;
    }
    const r = JSON.parse((await reader).stdout) as {
      reads: number;
      errors: string[];
      mismatches: number;
      maxMs: number;
    };
    console.log(
      `restart: ${r.reads} reads across 3 server kills, max ${Math.round(r.maxMs)} ms, servers ${h.servers.join(',')}`,
    );
    expect(r.errors).toEqual([]); // never ENOTCONN / EIO
    expect(r.mismatches).toBe(0);
    expect(h.servers).toHaveLength(4);
    expect(r.reads).toBeGreaterThan(100);
    expect(r.maxMs).toBeLessThan(5000); // the longest read waited for one server start, not forever
  });

  it('a read in flight when the server dies is answered by the next server', async () => {
    const stall = join(mkdtempSync(join(tmpdir(), 'ferry-stall-')), 'stall');
    const h = await startHolder({ PROTO_STALL_FILE: stall });
    await run('stat', [join(h.mnt, 'data')]);
    writeFileSync(stall, '');
    const t0 = performance.now();
    const dd = run(
      'dd',
      [`if=${join(h.mnt, 'data')}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct'],
      {
        timeout: 20_000,
      },
    );
    await new Promise((r) => setTimeout(r, 500)); // the server has read the request and sits on it
    rmSync(stall);
    const next = h.serverStarted();
    process.kill(h.servers.at(-1)!, 'SIGKILL');
    await next;
    await dd; // without FUSE_NOTIFY_RESEND this read hangs in D state until the connection is aborted
    const ms = performance.now() - t0;
    console.log(`restart: in-flight read answered by the new server after ${Math.round(ms)} ms`);
    expect(ms).toBeLessThan(4500); // not the dead server's 5 s stall: the successor answered it
  });
});
