// The reference for differential tests: extracts layers with GNU tar into one directory by OCI rules
// (whiteouts delete lower entries, opaque markers clear lower children, markers themselves vanish).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';

function tarList(tar: Buffer, exclude: readonly string[]): string[] {
  return execFileSync('tar', ['-tf', '-', ...exclude.map((e) => `--exclude=${e}`)], {
    input: tar,
    maxBuffer: 1 << 28,
  })
    .toString()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^\.\//, '').replace(/\/$/, ''));
}

/** `exclude`: GNU tar patterns left out (e.g. a producer's own metadata entries that are not image content). */
export function ociMerge(layerTars: readonly Buffer[], dir: string, exclude: readonly string[] = []): void {
  mkdirSync(dir, { recursive: true });
  for (const tar of layerTars) {
    for (const name of tarList(tar, exclude)) {
      const base = basename(name);
      if (base === '.wh..wh..opq') {
        const d = join(dir, dirname(name));
        try {
          for (const child of readdirSync(d)) rmSync(join(d, child), { recursive: true, force: true });
        } catch {
          /* the dir does not exist below: nothing to hide */
        }
      } else if (base.startsWith('.wh.')) {
        rmSync(join(dir, dirname(name), base.slice(4)), { recursive: true, force: true });
      }
    }
    execFileSync(
      'tar',
      [
        '--xattrs',
        '--xattrs-include=*',
        '--same-owner',
        '-p',
        ...exclude.map((e) => `--exclude=${e}`),
        '-xf',
        '-',
        '-C',
        dir,
      ],
      {
        input: tar,
        maxBuffer: 1 << 28,
      },
    );
    for (const name of tarList(tar, exclude)) {
      if (basename(name).startsWith('.wh.')) rmSync(join(dir, name), { force: true });
    }
  }
}
