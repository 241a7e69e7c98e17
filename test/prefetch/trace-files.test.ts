// traceFiles: chunks mapped back to the files whose bytes they hold, and files ordered by first access.
import { describe, expect, it } from 'vitest';
import { traceFiles } from '../../src/prefetch/trace-files.js';
import type { TraceEntry } from '../../src/prefetch/trace.js';
import { sha256 } from '../../src/image/digest.js';
import { fakeIndex } from './fixtures.js';

const ix = fakeIndex('f', 6, 1000, [
  { path: 'a', offset: 0, size: 300 },
  { path: 'b', offset: 512, size: 400 }, // spans chunks 0 and 1
  { path: 'big', offset: 1024, size: 3500 }, // chunks 1..4
  { path: 'tail', offset: 5200, size: 10 },
]);
const at = (chunk: number, ms: number): TraceEntry => ({
  layerDigest: ix.layerDigest,
  chunkDigest: ix.chunks[chunk]!.digest,
  chunkIndex: chunk,
  size: 1000,
  firstAccessMs: ms,
});

describe('traceFiles', () => {
  it('lists the files in each traced chunk and each touched file once, at its first access', () => {
    const r = traceFiles([at(3, 0), at(0, 5), at(5, 9)], [ix]);
    expect(r.timeline.map((t) => t.files)).toEqual([['big'], ['a', 'b'], ['tail']]);
    expect(r.files.map((f) => [f.path, f.firstAccessMs, f.size])).toEqual([
      ['big', 0, 3500],
      ['a', 5, 300],
      ['b', 5, 400],
      ['tail', 9, 10],
    ]);
    expect(r.unknown).toBe(0);
  });

  it('counts entries of layers it does not know', () => {
    const r = traceFiles([{ ...at(0, 0), layerDigest: sha256('x') }], [ix]);
    expect(r.unknown).toBe(1);
    expect(r.files).toEqual([]);
  });
});
