// raceAbort: a read answers as soon as its layer closes, and a finished read leaves nothing on the long-lived
// signal (one listener per read kept each read's bytes reachable until close: 500 MB for a 512 MiB stream).
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { AbortedError } from '../../src/errors.js';
import { raceAbort } from '../../src/source/deadline.js';

const closed = () => new AbortedError('closed');

describe('raceAbort', () => {
  it('settles like the work and removes its listener, whether the work resolves or rejects', async () => {
    const ac = new AbortController();
    await expect(raceAbort(Promise.resolve(Buffer.from('x')), ac.signal, closed)).resolves.toEqual(
      Buffer.from('x'),
    );
    await expect(raceAbort(Promise.reject(new Error('boom')), ac.signal, closed)).rejects.toThrow('boom');
    const many = Array.from({ length: 1000 }, (_, i) => raceAbort(Promise.resolve(i), ac.signal, closed));
    expect(await Promise.all(many)).toHaveLength(1000);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('rejects at once when the signal aborts, leaving the work running; aborted already: rejects', async () => {
    const ac = new AbortController();
    let finish: (v: number) => void = () => undefined;
    const work = new Promise<number>((r) => (finish = r));
    const raced = raceAbort(work, ac.signal, closed);
    ac.abort();
    await expect(raced).rejects.toBeInstanceOf(AbortedError);
    finish(7);
    expect(await work).toBe(7);
    await expect(raceAbort(Promise.resolve(1), ac.signal, closed)).rejects.toBeInstanceOf(AbortedError);
  });
});
