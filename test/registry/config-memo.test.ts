// ConfigMemo: one fetch per repository and digest for every caller, failures forgotten, callers abort alone.
import { describe, expect, it } from 'vitest';
import type { Digest } from '../../src/image/digest.js';
import { parseReference, type ImageReference } from '../../src/image/reference.js';
import { ConfigMemo } from '../../src/registry/config-memo.js';

const D = `sha256:${'a'.repeat(64)}` as Digest;
const A = parseReference('127.0.0.1:5000/a:1');
const B = parseReference('127.0.0.1:5000/b:1');

function counting(answer: (n: number) => Promise<Buffer>) {
  const calls: string[] = [];
  const memo = new ConfigMemo((ref: ImageReference, digest: Digest) => {
    calls.push(`${ref.repository}@${digest}`);
    return answer(calls.length);
  });
  return { memo, calls };
}

describe('ConfigMemo', () => {
  it('fetches a config once for concurrent and later callers of one repository', async () => {
    const { memo, calls } = counting(() => Promise.resolve(Buffer.from('{}')));
    const [x, y] = await Promise.all([memo.get(A, D), memo.get(A, D)]);
    expect((await memo.get(A, D)).toString()).toBe('{}');
    expect(x).toBe(y);
    expect(calls).toEqual([`a@${D}`]);
    await memo.get(B, D); // another repository asks its own registry
    expect(calls).toEqual([`a@${D}`, `b@${D}`]);
  });

  it('forgets a failure, so the next caller fetches again', async () => {
    const { memo, calls } = counting((n) =>
      n === 1 ? Promise.reject(new Error('down')) : Promise.resolve(Buffer.from('ok')),
    );
    await expect(memo.get(A, D)).rejects.toThrow('down');
    expect((await memo.get(A, D)).toString()).toBe('ok');
    expect(calls).toHaveLength(2);
  });

  it('lets one caller give up without failing the others', async () => {
    let release!: (b: Buffer) => void;
    const { memo, calls } = counting(() => new Promise<Buffer>((r) => (release = r)));
    const ac = new AbortController();
    const quitter = memo.get(A, D, ac.signal);
    const waiter = memo.get(A, D);
    ac.abort();
    await expect(quitter).rejects.toMatchObject({ code: 'ABORTED' });
    release(Buffer.from('late'));
    expect((await waiter).toString()).toBe('late');
    expect(calls).toHaveLength(1);
  });
});
