// `ferry fuse-holder`'s hand-parsed options, the snapshots socket ones in particular: both paths or neither, an
// octal mode, and a usage error for anything else.
import { describe, expect, it } from 'vitest';
import { parseHolderArgs } from '../../src/fuse/holder/args.js';

describe('parseHolderArgs', () => {
  it('keeps the snapshots socket off by default and reads its paths and mode', () => {
    expect(parseHolderArgs(['--socket', '/run/h.sock'])).toMatchObject({
      snapshotsSocket: '',
      snapshotsMode: 0o660,
    });
    const a = parseHolderArgs([
      '--socket=/run/h.sock',
      '--snapshots-socket',
      '/run/s.sock',
      '--snapshots-target=/run/s-daemon.sock',
      '--snapshots-mode',
      '600',
    ]);
    expect(a).toMatchObject({
      socket: '/run/h.sock',
      snapshotsSocket: '/run/s.sock',
      snapshotsTarget: '/run/s-daemon.sock',
      snapshotsMode: 0o600,
    });
  });

  it('refuses one path without the other and a mode that is not octal', () => {
    expect(() => parseHolderArgs(['--socket', 'h', '--snapshots-socket', 's'])).toThrow(/go together/);
    expect(() => parseHolderArgs(['--socket', 'h', '--snapshots-target', 't'])).toThrow(/go together/);
    const bad = ['--socket', 'h', '--snapshots-socket', 's', '--snapshots-target', 't', '--snapshots-mode'];
    expect(() => parseHolderArgs([...bad, '0x1ff'])).toThrow(/octal/);
    expect(() => parseHolderArgs([...bad, '9'])).toThrow(/octal/);
  });
});
