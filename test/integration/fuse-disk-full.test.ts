// DiskChunkStore on a real full filesystem (a 1 MiB tmpfs): puts never throw, the trouble is logged once per
// incident, stored chunks keep being served, and writes resume (logged) once space is back.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskChunkStore } from '../../src/chunks/disk-chunk-store.js';
import { sha256 } from '../../src/image/digest.js';

if (process.getuid?.() !== 0) throw new Error('disk-full test must run as root (it mounts a tmpfs)');

describe('DiskChunkStore on a full disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  afterAll(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops writes without throwing, logs once per incident, keeps serving', async () => {
    const lines: { level: number; msg: string; code?: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
        cb();
      },
    });
    const log = pino({ level: 'info' }, sink);
    const store = new DiskChunkStore({ dir, maxBytes: 64 * 1024 * 1024, log, incidentQuietMs: 0 });
    await store.open();
    const chunks = Array.from({ length: 8 }, (_, i) => Buffer.alloc(200 * 1024, i + 1));
    for (const b of chunks) await expect(store.put(sha256(b), b)).resolves.toBeUndefined();
    const stored = chunks.filter((b) => store.has(sha256(b)));
    expect(stored.length).toBeGreaterThan(0);
    expect(stored.length).toBeLessThan(chunks.length);
    expect(store.stats().failures).toBe(chunks.length - stored.length);
    const warns = lines.filter((l) => l.level === 40);
    expect(warns).toHaveLength(1);
    expect(warns[0]?.code).toBe('ENOSPC');
    for (const b of stored) expect((await store.get(sha256(b)))?.equals(b)).toBe(true);
    expect(execFileSync('find', [dir, '-name', '*.tmp-*']).toString()).toBe('');

    // Free space and write again: one "recovered" line.
    unlinkSync(store.pathOf(sha256(stored[0]!)));
    unlinkSync(store.pathOf(sha256(stored[1] ?? stored[0]!)));
    const fresh = Buffer.alloc(100 * 1024, 99);
    await store.put(sha256(fresh), fresh);
    expect(store.has(sha256(fresh))).toBe(true);
    expect(lines.filter((l) => l.msg.includes('writes succeed again'))).toHaveLength(1);
  });
});
