// TraceStore: round trip, merge on record, workload keys, atomic writes, corrupt files as misses.
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { TraceStore } from '../../src/prefetch/trace-store.js';
import type { Trace } from '../../src/prefetch/trace.js';
import { sha256 } from '../../src/image/digest.js';
import { fakeIndex, MANIFEST } from './fixtures.js';

const ix = fakeIndex('s', 10);

function startup(chunks: number[], workloadKey?: string): Trace {
  return {
    version: 1,
    manifestDigest: MANIFEST,
    ...(workloadKey !== undefined ? { workloadKey } : {}),
    recordedAt: '',
    durationMs: 0,
    entries: chunks.map((c, i) => ({
      layerDigest: ix.layerDigest,
      chunkDigest: ix.chunks[c]!.digest,
      chunkIndex: c,
      size: 1000,
      firstAccessMs: i * 10,
    })),
  };
}

async function store() {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-traces-'));
  return { dir, store: new TraceStore({ dir, merge: { maxEntries: 100 }, log: silentLogger() }) };
}

describe('TraceStore', () => {
  it('records startups, merging them, and reads them back', async () => {
    const { store: s } = await store();
    expect(await s.get(MANIFEST)).toBeUndefined();
    await s.record(startup([1, 2]));
    const t = await s.record(startup([2, 3]));
    expect(t.startups).toBe(2);
    const back = await s.get(MANIFEST);
    expect(back).toEqual(t);
    expect(back!.entries.map((e) => e.chunkIndex).sort()).toEqual([1, 2, 3]);
  });

  it('serialises concurrent records of one image so no startup is lost', async () => {
    const { store: s } = await store();
    await Promise.all([s.record(startup([1])), s.record(startup([2])), s.record(startup([3]))]);
    expect((await s.get(MANIFEST))!.startups).toBe(3);
  });

  it('keeps workloads apart', async () => {
    const { store: s } = await store();
    await s.record(startup([1], 'web'));
    await s.record(startup([2], 'worker'));
    expect((await s.get(MANIFEST, 'web'))!.entries.map((e) => e.chunkIndex)).toEqual([1]);
    expect((await s.get(MANIFEST, 'worker'))!.entries.map((e) => e.chunkIndex)).toEqual([2]);
    expect(await s.get(MANIFEST)).toBeUndefined();
  });

  it('writes via a temp file and rename, leaving no temp files behind', async () => {
    const { dir, store: s } = await store();
    await s.record(startup([1, 2, 3]));
    await s.record(startup([4]));
    const names = await readdir(dir);
    expect(names).toEqual([s.pathFor(MANIFEST).split('/').pop()]);
    expect(JSON.parse(await readFile(s.pathFor(MANIFEST), 'utf8'))).toMatchObject({ startups: 2 });
  });

  it.each([
    ['truncated', (text: string) => text.slice(0, text.length >> 1)],
    ['not JSON', () => '\u0000\u0001garbage'],
    ['wrong shape', () => JSON.stringify({ version: 1, entries: 'no' })],
    ['another image', (text: string) => text.replaceAll(MANIFEST, sha256('other'))],
  ])('treats a %s file as a miss, removes it, and rebuilds on the next record', async (_name, damage) => {
    const { store: s } = await store();
    await s.record(startup([1, 2]));
    const path = s.pathFor(MANIFEST);
    await writeFile(path, damage(await readFile(path, 'utf8')));
    expect(await s.get(MANIFEST)).toBeUndefined();
    await expect(readdir(join(path, '..'))).resolves.toEqual([]);
    const rebuilt = await s.record(startup([5]));
    expect(rebuilt.startups).toBe(1);
  });
});
