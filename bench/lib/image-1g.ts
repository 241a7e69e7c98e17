// The ~1 GiB image of the mount-vs-pull benchmark (and its 20k-file base layer, reused by stat-tree): what is
// in each layer, and the deterministic 5% working set an "application start" reads from it.
import { cachedTreeLayer, smallFilePath, smallFiles, type FileSpec } from './gen.js';
import { MiB, type BenchArgs } from './report.js';

export interface ImageSpec {
  name: string;
  layers: Array<{ key: string; files: () => FileSpec[] }>;
  /** Sum of file sizes (the tar streams add headers and padding on top). */
  fileBytes: number;
}

export interface ReadOp {
  path: string;
  offset: number;
  length: number;
  kind: string;
}

interface Shape {
  smallCount: number;
  bigBytes: number;
  libCount: number;
  libBytes: number;
}

const shape = (args: BenchArgs): Shape =>
  args.quick
    ? { smallCount: 4000, bigBytes: 128 * MiB, libCount: 24, libBytes: (5 * MiB) / 2 }
    : { smallCount: 20_000, bigBytes: 640 * MiB, libCount: 96, libBytes: (5 * MiB) / 2 };

const SMALL_PREFIX = 'usr/share/pkg';
const BIG_PATH = 'opt/data/big.bin';
const libPath = (i: number) => `usr/lib/lib${String(i).padStart(3, '0')}.so`;
const APP_FILES: FileSpec[] = [
  { path: 'app/start.sh', size: 2_000, content: 'text', seed: 11, mode: 0o755 },
  ...Array.from({ length: 8 }, (_, i) => ({
    path: `app/config/c${i}.conf`,
    size: 3_000 + 500 * i,
    content: 'text' as const,
    seed: 20 + i,
  })),
];

/** The base layer on its own: `smallCount` small files (20k in a full run). */
export function smallLayer(args: BenchArgs): { key: string; files: () => FileSpec[]; count: number } {
  const { smallCount } = shape(args);
  return {
    key: `small-${smallCount}`,
    files: () => smallFiles(SMALL_PREFIX, smallCount, 1000),
    count: smallCount,
  };
}

export function image1g(args: BenchArgs): ImageSpec {
  const s = shape(args);
  const small = smallLayer(args);
  const big: FileSpec[] = [{ path: BIG_PATH, size: s.bigBytes, content: 'mixed', seed: 77 }];
  const libs: FileSpec[] = Array.from({ length: s.libCount }, (_, i) => ({
    path: libPath(i),
    size: s.libBytes,
    content: (['mixed', 'random', 'text'] as const)[i % 3]!,
    seed: 5000 + i * 1000,
  }));
  const layers = [
    { key: small.key, files: small.files },
    { key: `big-${s.bigBytes}`, files: () => big },
    { key: `libs-${s.libCount}x${s.libBytes}`, files: () => libs },
    { key: 'app', files: () => APP_FILES },
  ];
  const fileBytes = [...small.files(), ...big, ...libs, ...APP_FILES].reduce((a, f) => a + f.size, 0);
  return { name: args.quick ? 'image-200m' : 'image-1g', layers, fileBytes };
}

/** Gzip-6 layer files of the image, from the data cache. */
export async function imageLayers(
  spec: ImageSpec,
  fresh: boolean,
): Promise<{ paths: string[]; generated: boolean }> {
  const out = await Promise.all(spec.layers.map((l) => cachedTreeLayer(l.key, fresh, l.files, 6)));
  return { paths: out.map((o) => o.path), generated: out.some((o) => !o.hit) };
}

/**
 * The working set, about 5% of the file bytes: the start script first (time to first byte), the app's
 * configs, five whole package directories plus a scattering of single small files, every eighth library
 * whole, and 1 MiB ranges spread over the big file for the rest of the budget.
 */
export function workingSet(args: BenchArgs, spec: ImageSpec): ReadOp[] {
  const s = shape(args);
  const ops: ReadOp[] = APP_FILES.map((f) => ({ path: f.path, offset: 0, length: f.size, kind: 'app' }));
  ops[0] = { ...ops[0]!, length: 4096 };
  const sizes = smallFiles(SMALL_PREFIX, s.smallCount, 1000);
  const dirs = Math.floor(s.smallCount / 200);
  for (const d of [0.05, 0.25, 0.45, 0.65, 0.85].map((f) => Math.floor(f * dirs))) {
    for (let i = d * 200; i < (d + 1) * 200 && i < s.smallCount; i++) {
      ops.push({ path: smallFilePath(SMALL_PREFIX, i), offset: 0, length: sizes[i]!.size, kind: 'small' });
    }
  }
  for (let i = 37; i < s.smallCount; i += 400) {
    ops.push({ path: smallFilePath(SMALL_PREFIX, i), offset: 0, length: sizes[i]!.size, kind: 'small' });
  }
  for (let i = 3; i < s.libCount; i += 8)
    ops.push({ path: libPath(i), offset: 0, length: s.libBytes, kind: 'lib' });
  const budget = Math.round(0.05 * spec.fileBytes);
  let used = ops.reduce((a, o) => a + o.length, 0);
  const rangeBytes = MiB;
  const ranges = Math.max(1, Math.floor((budget - used) / rangeBytes));
  for (let k = 0; k < ranges; k++) {
    // Spread evenly, offset by a prime number of KiB so ranges do not line up with chunk boundaries.
    const offset = Math.floor((k * (s.bigBytes - rangeBytes)) / ranges / 4096) * 4096 + 131 * 1024;
    ops.push({ path: BIG_PATH, offset, length: rangeBytes, kind: 'big-range' });
    used += rangeBytes;
  }
  return ops;
}
