// Private paths: a socket is bound inside a fresh 0700 dir, gets its final mode there and only then appears at
// its path (no moment at which another user could connect to it);
// private dirs are created 0700 and an existing one is tightened.
import { mkdtemp, lstat, mkdir, readdir, chmod } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bindSocketPrivately, dirWithMode, privateDir } from '../../src/private-fs.js';

describe('bindSocketPrivately', () => {
  it('binds in a 0700 dir, sets the mode there, then renames into place', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-sock-'));
    const path = join(dir, 'api.sock');
    const server = createServer((s) => s.end('hi'));
    const seen: string[] = [];
    await bindSocketPrivately(path, 0o660, async (at) => {
      expect(at).not.toBe(path);
      expect(((await lstat(dirname(at))).mode & 0o777).toString(8)).toBe('700');
      await new Promise<void>((r) => server.listen(at, r));
      seen.push(...(await readdir(dir)));
    });
    expect(seen).not.toContain('api.sock'); // not at its path while its mode was still the default
    const st = await lstat(path);
    expect(st.isSocket()).toBe(true);
    expect((st.mode & 0o777).toString(8)).toBe('660');
    expect(await readdir(dir)).toEqual(['api.sock']); // the private dir is gone
    const reply = await new Promise<string>((resolve, reject) => {
      const c = createConnection(path);
      c.on('data', (b) => resolve(b.toString()));
      c.on('error', reject);
    });
    expect(reply).toBe('hi'); // the renamed socket still answers
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('removes the private dir when the bind fails', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-sock-'));
    await expect(
      bindSocketPrivately(join(dir, 'x.sock'), 0o600, () => Promise.reject(new Error('EADDRINUSE'))),
    ).rejects.toThrow(/EADDRINUSE/);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('privateDir / dirWithMode', () => {
  it('creates 0700 and tightens an existing dir; dirWithMode sets an exact mode under any umask', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-priv-'));
    await privateDir(join(dir, 'a/b'));
    expect(((await lstat(join(dir, 'a/b'))).mode & 0o777).toString(8)).toBe('700');
    await mkdir(join(dir, 'open'));
    await chmod(join(dir, 'open'), 0o755);
    await privateDir(join(dir, 'open'));
    expect(((await lstat(join(dir, 'open'))).mode & 0o777).toString(8)).toBe('700');
    const old = process.umask(0o077);
    try {
      await dirWithMode(join(dir, 'wide'), 0o755);
    } finally {
      process.umask(old);
    }
    expect(((await lstat(join(dir, 'wide'))).mode & 0o777).toString(8)).toBe('755');
  });
});
