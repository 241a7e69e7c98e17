// A generated layer: thousands of small files, a few files larger than a span, empty files, whiteouts,
// an opaque dir, links and a duplicate path, archived by GNU tar (and gzip'd by GNU gzip).
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytesSeeded, rng, textPayload } from '../codec/payload.js';

export interface LayerFixture {
  /** path → content of every regular file as the layer should present it. */
  files: Map<string, Buffer>;
  tar: Buffer;
  gz: Buffer;
}

export function makeLayer(opts: { smallFiles: number; seed: number }): LayerFixture {
  const base = mkdtempSync(join(tmpdir(), 'ferry-layer-'));
  const root = join(base, 'root');
  const files = new Map<string, Buffer>();
  const r = rng(opts.seed);
  const put = (path: string, data: Buffer): void => {
    writeFileSync(join(root, path), data);
    files.set(path, data);
  };
  for (let d = 0; d < 40; d++) mkdirSync(join(root, `dir${d}`), { recursive: true });
  for (let i = 0; i < opts.smallFiles; i++) {
    const size = r() < 0.05 ? 0 : Math.floor(r() * 6000);
    const data = r() < 0.5 ? textPayload(size, i + 1) : randomBytesSeeded(size, i + 1);
    put(`dir${i % 40}/f${i}.dat`, data);
  }
  put('big-text.bin', textPayload(2_600_000, 77));
  put('big-random.bin', randomBytesSeeded(3_100_000, 78));
  put('quarter.bin', randomBytesSeeded(256 * 1024, 79));
  put('just-under-quarter.bin', randomBytesSeeded(256 * 1024 - 1, 80));
  put('empty-a', Buffer.alloc(0));
  put('dir3/empty-b', Buffer.alloc(0));
  writeFileSync(join(root, 'dir1/.wh.gone'), '');
  writeFileSync(join(root, 'dir2/.wh..wh..opq'), '');
  linkSync(join(root, 'big-text.bin'), join(root, 'dir5/hard-big'));
  symlinkSync('../big-text.bin', join(root, 'dir6/sym'));
  put('dup.txt', Buffer.from('first version\n'));
  const tarPath = join(base, 'layer.tar');
  execFileSync('tar', ['--format=pax', '--sort=name', '-cf', tarPath, '-C', root, '.']);
  put('dup.txt', Buffer.from('second, longer version\n'));
  execFileSync('tar', ['--format=pax', '-rf', tarPath, '-C', root, './dup.txt']);
  const tar = readFileSync(tarPath);
  const gz = execFileSync('gzip', ['-6', '-c', tarPath], { maxBuffer: 1 << 30 });
  rmSync(base, { recursive: true, force: true });
  return { files, tar, gz };
}
