// `ferry prefetch --files` progress: a line with chunks and bytes done on a terminal, cleared at the end (and on
// failure); nothing at all when stderr is not a terminal.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { fetchAll } from '../../src/cli/prefetch-command.js';
import { Progress } from '../../src/cli/format.js';

function terminal(isTTY: boolean): { isTTY: boolean; text: string; write(t: string): void } {
  return {
    isTTY,
    text: '',
    write(t: string) {
      this.text += t;
    },
  };
}

const slowFetch = async (n: number): Promise<number> => {
  await sleep(120); // past the progress line's 100 ms throttle: each chunk shows
  return n * 1024;
};

describe('prefetch --files progress', () => {
  it('shows chunks and bytes done on a terminal and clears the line at the end', async () => {
    const tty = terminal(true);
    expect(await fetchAll([1, 2, 3], 1, slowFetch, new Progress(tty))).toBe(6 * 1024);
    expect(tty.text).toContain('1/3 chunks, 1.0 KiB');
    expect(tty.text).toContain('[########################] 100% 3/3 chunks, 6.0 KiB');
    expect(tty.text.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('clears the line when a fetch fails', async () => {
    const tty = terminal(true);
    const failing = (n: number): Promise<number> =>
      n === 2 ? Promise.reject(new Error('origin down')) : slowFetch(n);
    await expect(fetchAll([1, 2], 1, failing, new Progress(tty))).rejects.toThrow('origin down');
    expect(tty.text.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('writes nothing when not a terminal', async () => {
    const pipe = terminal(false);
    expect(await fetchAll([1, 2], 2, slowFetch, new Progress(pipe))).toBe(3 * 1024);
    expect(pipe.text).toBe('');
  });
});
