// MergedLookup: overlay semantics over layer indexes (top layer wins, whiteouts and opaque dirs hide lower
// layers, hardlinks), symlink chains within the image (absolute, relative, through directories, loops) and PATH.
import { describe, expect, it } from 'vitest';
import { MergedLookup } from '../../src/layer/merged-lookup.js';
import { fileLayer } from '../prefetch/file-layer.js';

const bytes = (s: string) => Buffer.from(s);

const bottom = fileLayer('bottom', [
  { path: 'usr/bin/tool', data: bytes('bottom tool') },
  { path: 'usr/bin/gone', data: bytes('deleted above') },
  { path: 'usr/lib/x86_64-linux-gnu/libc.so.6', data: bytes('libc') },
  { path: 'lib64', symlink: 'usr/lib64' },
  { path: 'usr/lib64/ld-linux-x86-64.so.2', symlink: '../lib/x86_64-linux-gnu/ld.so' },
  { path: 'usr/lib/x86_64-linux-gnu/ld.so', data: bytes('loader') },
  { path: 'opt/app/old.conf', data: bytes('old') },
  { path: 'opt/app/kept.conf', data: bytes('kept') },
  { path: 'etc/loop-a', symlink: 'loop-b' },
  { path: 'etc/loop-b', symlink: '/etc/loop-a' },
  { path: 'srv/data/file', data: bytes('under a dir replaced by a file') },
]).index;
const top = fileLayer('top', [
  { path: 'usr/bin/tool', data: bytes('top tool') },
  { path: 'usr/bin/gone', whiteout: true },
  { path: 'opt/app', dir: true, opaque: true },
  { path: 'opt/app/new.conf', data: bytes('new') },
  { path: 'usr/local/bin/tool', hardlink: 'usr/bin/tool' },
  { path: 'srv/data', data: bytes('now a file') },
  { path: 'bin', symlink: 'usr/bin' },
]).index;
const merged = new MergedLookup([bottom, top]);

describe('MergedLookup', () => {
  it('shows the top layer first and hardlink names as their target', () => {
    expect(merged.lookup('/usr/bin/tool')).toMatchObject({ layer: 1, path: 'usr/bin/tool' });
    expect(merged.lookup('usr/lib/x86_64-linux-gnu/libc.so.6')).toMatchObject({
      layer: 0,
      entry: { size: 4 },
    });
    const h = merged.lookup('/usr/local/bin/tool');
    expect(h).toMatchObject({ layer: 1, entry: { type: 'file', size: 8 } });
    expect(h?.entry.dataOffset).toBe(merged.lookup('/usr/bin/tool')?.entry.dataOffset);
  });

  it('hides what a whiteout, an opaque dir or a non-directory above covers', () => {
    expect(merged.lookup('/usr/bin/gone')).toBeUndefined();
    expect(new MergedLookup([bottom]).lookup('/usr/bin/gone')).toBeDefined();
    expect(merged.lookup('/opt/app/old.conf')).toBeUndefined();
    expect(merged.lookup('/opt/app/kept.conf')).toBeUndefined();
    expect(merged.lookup('/opt/app/new.conf')).toMatchObject({ layer: 1 });
    expect(merged.lookup('/srv/data/file')).toBeUndefined();
    expect(merged.lookup('/srv/data')).toMatchObject({ layer: 1, entry: { type: 'file' } });
  });

  it('follows symlink chains through directories, and gives up on loops', () => {
    const ld = merged.lookup('/lib64/ld-linux-x86-64.so.2');
    expect(ld).toMatchObject({ path: 'usr/lib/x86_64-linux-gnu/ld.so', entry: { type: 'file' } });
    expect(merged.lookup('/lib64/ld-linux-x86-64.so.2', { followLast: false })).toMatchObject({
      path: 'usr/lib64/ld-linux-x86-64.so.2',
      entry: { type: 'symlink' },
    });
    expect(merged.lookup('/bin/tool')).toMatchObject({ path: 'usr/bin/tool', layer: 1 });
    expect(merged.lookup('/usr/bin/../lib/x86_64-linux-gnu/libc.so.6')).toMatchObject({ layer: 0 });
    expect(merged.lookup('/etc/loop-a')).toBeUndefined();
    expect(merged.lookup('/usr/bin/tool/x')).toBeUndefined();
  });

  it('finds commands through PATH in order, or by path relative to the working directory', () => {
    expect(merged.which('tool', { pathEnv: '/nowhere:/usr/local/bin:/usr/bin' })).toMatchObject({
      path: 'usr/local/bin/tool',
    });
    expect(merged.which('tool', { pathEnv: '/bin:/usr/local/bin' })).toMatchObject({ path: 'usr/bin/tool' });
    expect(merged.which('tool')).toMatchObject({ path: 'usr/local/bin/tool' }); // the default PATH
    expect(merged.which('gone')).toBeUndefined();
    expect(merged.which('./new.conf', { cwd: '/opt/app' })).toMatchObject({ path: 'opt/app/new.conf' });
    expect(merged.which('lib64', { pathEnv: '/' })).toBeUndefined(); // not a regular file
  });
});
