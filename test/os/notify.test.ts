// notifySystemd: silent outside systemd; under a Type=notify unit it runs `systemd-notify` with our pid, and a
// missing binary is logged, never thrown. A stand-in systemd-notify on PATH records its arguments.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { notifySystemd } from '../../src/os/notify.js';
import { silentLogger } from '../../src/log.js';

describe('notifySystemd', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    expect(await notifySystemd('ready', 'x', silentLogger(), { PATH: '/nonexistent' })).toBe(false);
  });

  it('sends READY with our pid through systemd-notify', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-notify-'));
    const out = join(dir, 'args');
    writeFileSync(join(dir, 'systemd-notify'), `#!/bin/sh\necho "$NOTIFY_SOCKET $*" > "${out}"\n`);
    chmodSync(join(dir, 'systemd-notify'), 0o755);
    const env = { PATH: `${dir}:/usr/bin:/bin`, NOTIFY_SOCKET: '/run/systemd/notify' };
    expect(await notifySystemd('ready', 'serving', silentLogger(), env)).toBe(true);
    expect(readFileSync(out, 'utf8').trim()).toBe(
      `/run/systemd/notify --pid=${process.pid} --ready --status=serving`,
    );
    expect(await notifySystemd('stopping', 'bye', silentLogger(), env)).toBe(true);
    expect(readFileSync(out, 'utf8')).toMatch(/STOPPING=1 --status=bye/);
  });

  it('reports a missing systemd-notify as false, logging the error with its stack and code', async () => {
    const env = { PATH: '/nonexistent', NOTIFY_SOCKET: '/run/systemd/notify' };
    expect(await notifySystemd('ready', 'x', silentLogger(), env)).toBe(false);
    const lines: string[] = [];
    const log = pino({}, { write: (s: string) => void lines.push(s) });
    expect(await notifySystemd('ready', 'x', log, env)).toBe(false);
    const { err } = JSON.parse(lines[0]!) as { err: { code: string; stack: string } };
    expect(err.code).toBe('ENOENT');
    expect(err.stack).toMatch(/systemd-notify ENOENT\n\s+at /);
  });
});
