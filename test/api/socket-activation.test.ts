// sd_listen_fds(3) rules: the passed socket is taken only when LISTEN_PID names this process, and the variables
// are removed either way so no child (the FUSE holder a daemon starts) takes the socket for its own.
import { describe, expect, it } from 'vitest';
import { takeActivatedSocket } from '../../src/api/socket-activation.js';

describe('takeActivatedSocket', () => {
  it('takes fd 3 when LISTEN_PID is this process and LISTEN_FDS counts one or more', () => {
    const env: NodeJS.ProcessEnv = {
      LISTEN_PID: '1234',
      LISTEN_FDS: '1',
      LISTEN_FDNAMES: 'ferry.socket',
      X: 'y',
    };
    expect(takeActivatedSocket(env, 1234)).toBe(3);
    expect(env).toEqual({ X: 'y' });
  });

  it('ignores another process’s sockets, a count of zero, garbage, and no variables, and still removes them', () => {
    const cases: NodeJS.ProcessEnv[] = [
      { LISTEN_PID: '99', LISTEN_FDS: '1' },
      { LISTEN_PID: '1234', LISTEN_FDS: '0' },
      { LISTEN_PID: '1234', LISTEN_FDS: 'x' },
      { LISTEN_FDS: '1' },
      {},
    ];
    for (const env of cases) {
      expect(takeActivatedSocket(env, 1234)).toBeUndefined();
      expect(env).toEqual({});
    }
  });
});
