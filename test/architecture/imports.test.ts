// Guards the module boundaries: imports point downward, seams are not bypassed, optional engines load on demand,
// and each third-party library has one home.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

/** Higher rank may import lower rank (or its own folder), never the reverse. */
const RANK: Record<string, number> = {
  'errors.ts': -1,
  'private-fs.ts': -1,
  'log.ts': 0,
  os: 0.5,
  image: 0,
  config: 1,
  codec: 1,
  registry: 1,
  chunks: 1,
  metrics: 1,
  source: 2,
  index: 3,
  layer: 4,
  fuse: 5,
  prefetch: 5,
  p2p: 5,
  mount: 6,
  snapshot: 6,
  api: 7,
  node: 7,
  daemon: 8,
  cli: 9,
  'main.ts': 10,
};

/** Library → the only folders (first path segment under src/) allowed to import it. */
const HOMES: Record<string, string[]> = {
  'fuse-native': ['fuse'],
  undici: ['registry'],
  pako: ['codec'],
  'lru-cache': ['chunks'],
  '@grpc/grpc-js': ['api'],
  '@grpc/proto-loader': ['api'],
  pino: ['log.ts'],
  commander: ['cli'],
  'smol-toml': ['config'],
  'prom-client': ['metrics'],
  'tar-stream': ['image'],
  'zstd-napi': ['codec'],
};

/** Folder → folders it must not import although their rank is lower (the seams between them are interfaces). */
const KEEP_OUT: Record<string, string[]> = {
  // snapshot/ mounts through the LayerMounter it is given; the daemon picks the FUSE engine.
  snapshot: ['fuse', 'os'],
};

/** Loaded only by dynamic import, when chosen (fuse-native is a native binding the default engine never needs). */
const DYNAMIC_ONLY = ['fuse/mount.ts'];

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function top(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const re = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  return [...text.matchAll(re)].map((m) => (m[1] ?? m[2])!);
}

describe('architecture', () => {
  const files = walk(SRC);

  it('every src file belongs to a ranked module', () => {
    const unranked = files.map(top).filter((t) => RANK[t] === undefined);
    expect([...new Set(unranked)]).toEqual([]);
  });

  it('imports point downward', () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const spec of imports(f)) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(f), spec).replace(/\.js$/, '.ts');
        const from = top(f);
        const to = top(target);
        if (from === to) continue;
        if ((RANK[to] ?? 99) >= (RANK[from] ?? -1))
          bad.push(`${relative(SRC, f)} -> ${relative(SRC, target)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('folders keep out of the ones behind their seams', () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const spec of imports(f)) {
        const target = resolve(dirname(f), spec);
        if (spec.startsWith('.') && KEEP_OUT[top(f)]?.includes(top(target)))
          bad.push(`${relative(SRC, f)} -> ${relative(SRC, target)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('optional engines are imported only dynamically', () => {
    const re = /(?:^|\n)\s*(?:import|export)\s(?!type\s)[^'"]*?from\s+['"]([^'"]+)['"]/g;
    const bad: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(re)) {
        const target = relative(SRC, resolve(dirname(f), m[1]!).replace(/\.js$/, '.ts'));
        if (DYNAMIC_ONLY.includes(target)) bad.push(`${relative(SRC, f)} -> ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('third-party libraries stay in their home folder', () => {
    const bad: string[] = [];
    for (const f of files) {
      for (const spec of imports(f)) {
        const lib = Object.keys(HOMES).find((l) => spec === l || spec.startsWith(`${l}/`));
        if (lib !== undefined && !HOMES[lib]!.includes(top(f)))
          bad.push(`${relative(SRC, f)} imports ${lib}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('derives config paths in config/resolve.ts only (everyone else reads config.paths)', () => {
    const derive =
      /\.daemon\.(stateDir|runDir)\b|\b(socketPath|holderSocket|hintSocketPath|statusSocketPath|root|dir) \?\? join\(/;
    const bad = files
      .filter((f) => top(f) !== 'config' && derive.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(bad).toEqual([]);
  });

  it('metrics are built from constructor-passed sources and channels: no provider setters', () => {
    const setter = /\bset[A-Z]\w*Provider\(/;
    const bad = files.filter((f) => setter.test(readFileSync(f, 'utf8'))).map((f) => relative(SRC, f));
    expect(bad).toEqual([]);
  });

  it('has no files without a header comment', () => {
    const bare = files.filter((f) => !readFileSync(f, 'utf8').startsWith('//'));
    expect(bare.map((f) => relative(SRC, f))).toEqual([]);
  });
});
