// resolveStartSet over layers made of this machine's real binaries: a script entrypoint leads to its `#!` shell,
// the shell's ELF interpreter and libraries; the command's named program and its libraries follow; the byte
// budget and broken files end the set early without failing. And the planner's choice between trace and set.
import { readFile, realpath } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { RunConfig } from '../../src/image/image-config.js';
import { silentLogger } from '../../src/log.js';
import { planPrefetch } from '../../src/prefetch/plan.js';
import { resolveStartSet } from '../../src/prefetch/start-set.js';
import type { TraceEntry } from '../../src/prefetch/trace.js';
import { fileLayer, LayerBytesSource, type FileSpec } from './file-layer.js';

const LIB = 'usr/lib/x86_64-linux-gnu';
const real = async (path: string, as: string): Promise<FileSpec> => ({
  path: as,
  data: await readFile(await realpath(path)),
});

async function image() {
  const base = fileLayer('base', [
    await real('/lib64/ld-linux-x86-64.so.2', `${LIB}/ld-linux-x86-64.so.2`),
    { path: 'lib64', symlink: 'usr/lib64' },
    { path: 'usr/lib64/ld-linux-x86-64.so.2', symlink: `/${LIB}/ld-linux-x86-64.so.2` },
    { path: 'lib', symlink: 'usr/lib' },
    { path: 'bin', symlink: 'usr/bin' },
    await real('/lib/x86_64-linux-gnu/libc.so.6', `${LIB}/libc.so.6`),
    { path: 'usr/share/big.dat', data: Buffer.alloc(3 * 1024 * 1024, 7) },
    await real('/lib/x86_64-linux-gnu/libselinux.so.1', `${LIB}/libselinux.so.1`),
    await real('/lib/x86_64-linux-gnu/libpcre2-8.so.0', `${LIB}/libpcre2-8.so.0`),
    await real('/bin/dash', 'usr/bin/dash'),
    { path: 'usr/bin/sh', symlink: 'dash' },
    await real('/bin/ls', 'usr/bin/ls'),
  ]);
  const app = fileLayer('app', [
    { path: 'app/start.sh', data: Buffer.from('#!/bin/sh\nexec "$@"\n') },
    {
      path: 'app/broken',
      data: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1]), Buffer.alloc(58)]),
    },
  ]);
  return { layers: [base, app], indexes: [base.index, app.index] };
}

const run = (o: Partial<RunConfig>): RunConfig => ({
  entrypoint: [],
  cmd: [],
  env: ['PATH=/app:/usr/local/bin:/usr/bin:/bin'],
  workingDir: '/app',
  ...o,
});

describe('resolveStartSet', () => {
  it('walks entrypoint script → shell → loader and libraries → the named program and its libraries', async () => {
    const img = await image();
    const source = new LayerBytesSource(img.layers);
    const set = await resolveStartSet({
      indexes: img.indexes,
      run: run({ entrypoint: ['start.sh'], cmd: ['ls', '-l'] }),
      budgetBytes: 64 * 1024 * 1024,
      fetch: (req) => source.fetch(req),
      log: silentLogger(),
    });
    expect(set.files.map((f) => [f.role, f.path])).toEqual([
      ['entrypoint', '/app/start.sh'],
      ['interpreter', '/usr/bin/dash'],
      ['interpreter', `/${LIB}/ld-linux-x86-64.so.2`],
      ['library', `/${LIB}/libc.so.6`],
      ['named', '/usr/bin/ls'],
      ['library', `/${LIB}/libselinux.so.1`],
      ['library', `/${LIB}/libpcre2-8.so.0`],
    ]);
    // Exactly those files' chunks, never the big unrelated file's, each once, and within the files' sizes.
    const big = img.indexes[0]!.entries.find((e) => e.path === 'usr/share/big.dat')!;
    const bigChunks = new Set(
      img.indexes[0]!.chunks.flatMap((c, i) =>
        c.offset >= big.dataOffset! && c.offset + c.size <= big.dataOffset! + big.size ? [i] : [],
      ),
    );
    expect(set.chunks.filter((r) => r.index === img.indexes[0] && bigChunks.has(r.chunk))).toEqual([]);
    const keys = set.chunks.map((r) => `${r.index.layerDigest}:${r.chunk}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(set.bytes).toBe(set.chunks.reduce((s, r) => s + r.index.chunks[r.chunk]!.size, 0));
    // Heads were read only from planned chunks.
    const planned = new Set(keys);
    expect(source.fetched.every((r) => planned.has(`${r.index.layerDigest}:${r.chunk}`))).toBe(true);
  });

  it('stops at the byte budget, in order', async () => {
    const img = await image();
    const source = new LayerBytesSource(img.layers);
    const set = await resolveStartSet({
      indexes: img.indexes,
      run: run({ cmd: ['/usr/bin/ls'] }),
      budgetBytes: 512 * 1024,
      fetch: (req) => source.fetch(req),
      log: silentLogger(),
    });
    expect(set.bytes).toBeLessThanOrEqual(512 * 1024);
    expect(set.files[0]).toMatchObject({ role: 'entrypoint', path: '/usr/bin/ls' });
    expect(set.files.length).toBeLessThan(5);
  });

  it('ends at a file it cannot parse, and is empty for a command the image lacks', async () => {
    const img = await image();
    const source = new LayerBytesSource(img.layers);
    const o = {
      indexes: img.indexes,
      budgetBytes: 1e9,
      fetch: source.fetch.bind(source),
      log: silentLogger(),
    };
    const broken = await resolveStartSet({ ...o, run: run({ entrypoint: ['/app/broken'] }) });
    expect(broken.files.map((f) => f.path)).toEqual(['/app/broken']);
    const missing = await resolveStartSet({ ...o, run: run({ entrypoint: ['python3'], cmd: [] }) });
    expect(missing).toEqual({ files: [], chunks: [], bytes: 0 });
  });
});

describe('planPrefetch with a start set', () => {
  it('plans the start set in its order without a trace, and the trace alone when there is one', async () => {
    const img = await image();
    const source = new LayerBytesSource(img.layers);
    const set = await resolveStartSet({
      indexes: img.indexes,
      run: run({ cmd: ['ls'] }),
      budgetBytes: 1e9,
      fetch: (req) => source.fetch(req),
      log: silentLogger(),
    });
    const base = {
      indexes: img.indexes,
      budgetBytes: 1e9,
      defaultBytesPerLayer: 0,
      background: 'none',
    } as const;
    const p = planPrefetch({ ...base, startSet: set.chunks });
    expect(p.items.map((i) => i.req)).toEqual(set.chunks);
    expect(p.items.every((i) => i.phase === 'default')).toBe(true);
    const ix = img.indexes[1]!;
    const trace: TraceEntry[] = [
      {
        layerDigest: ix.layerDigest,
        chunkDigest: ix.chunks[0]!.digest,
        chunkIndex: 0,
        size: 1,
        firstAccessMs: 0,
      },
    ];
    const t = planPrefetch({ ...base, startSet: set.chunks, trace });
    expect(t.items.map((i) => [i.phase, i.req.chunk])).toEqual([['trace', 0]]);
  });
});
