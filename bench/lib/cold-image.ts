// The cold-start benchmark's image: an interpreter-like runtime in four gzip layers (an OS base with libc and
// thousands of docs, a runtime with a big ELF-like binary and a "stdlib" of thousands of small modules,
// site-packages, an app) and the ~70 reads its start makes across the layers.
import { cachedTreeLayer, type FileSpec } from './gen.js';
import type { ReadOp } from './image-1g.js';
import { MiB, type BenchArgs } from './report.js';

export interface ColdImage {
  layers: Array<{ key: string; files: () => FileSpec[] }>;
  fileBytes: number;
  fileCount: number;
  start: ReadOp[];
}

const KiB = 1024;
const LIB = 'usr/lib/x86_64-linux-gnu';
const STDLIB = 'usr/lib/python3.11';
const SITE = 'usr/lib/python3/dist-packages';
/** Modules per stdlib package dir: `STDLIB/pkgNN/modNNN.py`, plus one `__pycache__` .pyc per module. */
const PER_PKG = 50;

const text = (path: string, size: number, seed: number, mode = 0o644): FileSpec => ({
  path,
  size,
  content: 'text',
  seed,
  mode,
});
const binary = (path: string, size: number, seed: number, mode = 0o755): FileSpec => ({
  path,
  size,
  content: 'mixed',
  seed,
  mode,
});
const modSize = (i: number): number => 1_000 + ((i * 7919) % 30_000);
const pycSize = (i: number): number => 800 + ((i * 104_729) % 18_000);
const modPath = (i: number): string =>
  `${STDLIB}/pkg${String(Math.floor(i / PER_PKG)).padStart(2, '0')}/mod${i}.py`;
const pycPath = (i: number): string =>
  `${STDLIB}/pkg${String(Math.floor(i / PER_PKG)).padStart(2, '0')}/__pycache__/mod${i}.cpython-311.pyc`;

export function coldImage(args: BenchArgs): ColdImage {
  // Full: ≈ 80 MB of gzip, 130 MB unpacked, like the Python image of issue 15 (68 MB, 165 MB); --quick: half.
  const scale = args.quick ? 0.2 : 0.4;
  const modules = Math.round(3000 * scale);
  const docs = Math.round(1500 * scale);
  const sitePkgs = Math.round(1500 * scale);
  const base: FileSpec[] = [
    binary(`${LIB}/ld-linux-x86-64.so.2`, 210 * KiB, 1),
    binary(`${LIB}/libc.so.6`, 2 * MiB, 2),
    binary(`${LIB}/libm.so.6`, 900 * KiB, 3),
    binary(`${LIB}/libz.so.1`, 120 * KiB, 4),
    binary(`${LIB}/libexpat.so.1`, 200 * KiB, 5),
    ...Array.from({ length: 40 }, (_, i) => binary(`${LIB}/libextra${i}.so`, (200 + 37 * i) * KiB, 100 + i)),
    ...Array.from({ length: docs }, (_, i) =>
      text(`usr/share/doc/p${i % 300}/f${i}.txt`, 500 + ((i * 31) % 6000), 1000 + i),
    ),
    ...Array.from({ length: 60 }, (_, i) => text(`etc/conf${i}`, 200 + i * 20, 5000 + i)),
  ];
  const runtime: FileSpec[] = [
    binary('usr/bin/python3.11', 24 * MiB, 10),
    binary(`${LIB}/libpython3.11.so.1.0`, 6 * MiB, 11),
    ...Array.from({ length: modules }, (_, i) => text(modPath(i), modSize(i), 20_000 + i)),
    ...Array.from({ length: modules }, (_, i) => ({
      path: pycPath(i),
      size: pycSize(i),
      content: i % 2 === 0 ? ('random' as const) : ('text' as const),
      seed: 40_000 + i,
      mode: 0o644,
    })),
    ...Array.from({ length: 30 }, (_, i) =>
      binary(`${STDLIB}/lib-dynload/ext${i}.so`, (100 + 20 * i) * KiB, 60_000 + i),
    ),
  ];
  const site: FileSpec[] = [
    ...Array.from({ length: sitePkgs }, (_, i) =>
      text(`${SITE}/sp${i % 40}/m${i}.py`, 500 + ((i * 53) % 20_000), 70_000 + i),
    ),
    ...Array.from({ length: 6 }, (_, i) =>
      binary(`${SITE}/sp${i}/_speedups.so`, 1 * MiB + i * 100 * KiB, 80_000 + i),
    ),
  ];
  const app: FileSpec[] = [
    text('app/main.py', 4_000, 90_000, 0o755),
    ...Array.from({ length: 8 }, (_, i) => text(`app/lib/m${i}.py`, 2_000 + 300 * i, 90_100 + i)),
    text('app/config.yaml', 1_500, 90_200),
  ];
  const layers = [
    { key: 'cold-base', files: base },
    { key: 'cold-runtime', files: runtime },
    { key: 'cold-site', files: site },
    { key: 'cold-app', files: app },
  ].map((l) => ({ key: `${l.key}${args.quick ? '-quick' : ''}`, files: () => l.files }));
  const all = [...base, ...runtime, ...site, ...app];
  const size = new Map(all.map((f) => [f.path, f.size]));
  const whole = (path: string, kind: string): ReadOp => ({ path, offset: 0, length: size.get(path)!, kind });
  // What an interpreter start touches: the binary's head and a few hot ranges (page faults on its mmap), the
  // loader and libraries whole, ~40 stdlib modules and their .pyc across packages, a few extensions,
  // site-packages, the app and its config. The first read is the binary's ELF header (time to first byte).
  const py = size.get('usr/bin/python3.11')!;
  const start: ReadOp[] = [
    { path: 'usr/bin/python3.11', offset: 0, length: 64 * KiB, kind: 'interpreter' },
    whole(`${LIB}/ld-linux-x86-64.so.2`, 'lib'),
    whole(`${LIB}/libc.so.6`, 'lib'),
    whole(`${LIB}/libm.so.6`, 'lib'),
    whole(`${LIB}/libz.so.1`, 'lib'),
    whole(`${LIB}/libexpat.so.1`, 'lib'),
    whole(`${LIB}/libpython3.11.so.1.0`, 'lib'),
    { path: 'usr/bin/python3.11', offset: 64 * KiB, length: 3 * MiB, kind: 'interpreter' },
    { path: 'usr/bin/python3.11', offset: Math.floor(py / 2), length: 1 * MiB, kind: 'interpreter' },
    { path: 'usr/bin/python3.11', offset: py - 2 * MiB, length: 1 * MiB, kind: 'interpreter' },
    ...[0, 1, 2].map((i) => whole(`etc/conf${i * 7}`, 'etc')),
  ];
  for (let k = 0; k < 20; k++) {
    const i = (k * 149 + 7) % modules;
    start.push(whole(modPath(i), 'stdlib'), whole(pycPath(i), 'stdlib'));
  }
  for (let k = 0; k < 4; k++) start.push(whole(`${STDLIB}/lib-dynload/ext${k * 5}.so`, 'ext'));
  for (let k = 0; k < 6; k++) start.push(whole(`${SITE}/sp${(k * 7) % 40}/m${(k * 7) % 40}.py`, 'site'));
  start.push(whole(`${SITE}/sp0/_speedups.so`, 'site'));
  start.push(...app.map((f) => whole(f.path, 'app')));
  return {
    layers,
    fileBytes: all.reduce((a, f) => a + f.size, 0),
    fileCount: all.length,
    start,
  };
}

/** The image's gzip-6 layers from the benchmark data cache (generated on first use). */
export async function coldLayers(image: ColdImage, fresh: boolean): Promise<string[]> {
  const out: string[] = [];
  for (const l of image.layers) out.push((await cachedTreeLayer(l.key, fresh, l.files, 6)).path);
  return out;
}
