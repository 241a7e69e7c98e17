// LayerTree: inode numbering, hardlinks (shared node, nlink), dir nlink, whiteouts, opaque dirs, hidden .wh.*.
import { describe, expect, it } from 'vitest';
import { LayerTree } from '../../src/layer/layer-tree.js';
import type { Entry } from '../../src/image/layer-index.js';
import { buildIdentityLayer } from '../helpers/identity-layer.js';

const { index } = buildIdentityLayer([
  { path: 'a/file', content: 'hello' },
  { path: 'a/link1', type: 'hardlink', linkTarget: 'a/file' },
  { path: 'b/link2', type: 'hardlink', linkTarget: 'a/file' },
  { path: 'b/chain', type: 'hardlink', linkTarget: 'b/link2' },
  { path: 'a/sub/x', content: 'x' },
  { path: 'gone', type: 'whiteout' },
  { path: 'opq', type: 'dir', opaque: true, xattrs: { 'trusted.overlay.opaque': 'n', 'user.k': 'v' } },
  { path: 'sym', type: 'symlink', linkTarget: 'a/file' },
  { path: 'suid', content: '#!', mode: 0o4755 },
  { path: 'dangling', type: 'hardlink', linkTarget: 'nope' },
]);

describe('LayerTree', () => {
  const tree = LayerTree.fromIndex(index);

  it('numbers inodes stably: root 1, entries by position + 2', () => {
    expect(tree.root.ino).toBe(1);
    const i = index.entries.findIndex((e) => e.path === 'a/file');
    expect(tree.lookup('/a/file')?.ino).toBe(i + 2);
    expect(LayerTree.fromIndex(index).lookup('a/file')?.ino).toBe(i + 2);
  });

  it('resolves hardlinks (incl. chains) to the same node with nlink = names', () => {
    const f = tree.lookup('a/file')!;
    expect(tree.lookup('a/link1')).toBe(f);
    expect(tree.lookup('b/link2')).toBe(f);
    expect(tree.lookup('b/chain')).toBe(f);
    expect(f.nlink).toBe(4);
    expect(f.size).toBe(5);
    expect(tree.lookup('dangling')).toBeUndefined();
  });

  it('counts dir links as 2 + subdirs and lists children', () => {
    expect(tree.lookup('a')?.nlink).toBe(3);
    expect([...tree.lookup('a')!.children!.keys()].sort()).toEqual(['file', 'link1', 'sub']);
    expect(tree.root.nlink).toBe(2 + 3); // a, b, opq
  });

  it('shows whiteouts as char 0/0 with no permission bits and owner root', () => {
    const w = tree.lookup('gone')!;
    expect(w).toMatchObject({ type: 'whiteout', mode: 0, uid: 0, gid: 0, devMajor: 0, devMinor: 0 });
  });

  it('marks opaque dirs and drops overlay-private xattrs from the tar', () => {
    const o = tree.lookup('opq')!;
    expect(o.opaque).toBe(true);
    expect([...o.xattrs.keys()]).toEqual(['user.k']);
    expect(o.xattrs.get('user.k')?.toString()).toBe('v');
  });

  it('keeps setuid bits, symlink size = target length', () => {
    expect(tree.lookup('suid')?.mode).toBe(0o4755);
    expect(tree.lookup('sym')).toMatchObject({ type: 'symlink', size: 6, linkTarget: 'a/file' });
  });

  it('hides .wh.* names, lets a real entry beat a whiteout, synthesises missing parents', () => {
    const entries: Entry[] = [
      { path: '', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
      { path: 'd/.wh.x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
      { path: 'd/x/y', type: 'fifo', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
      { path: 'k', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
      { path: 'k', type: 'whiteout', mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
      { path: 'w', type: 'whiteout', mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
      { path: 'w', type: 'dir', mode: 0o700, uid: 0, gid: 0, size: 0, mtimeMs: 0 },
    ];
    const t = LayerTree.fromIndex({ ...index, entries });
    expect(t.lookup('d/.wh.x')).toBeUndefined();
    expect(t.lookup('d')).toMatchObject({ type: 'dir', mode: 0o755 });
    expect(t.lookup('d/x')?.type).toBe('dir');
    expect(t.lookup('d/x/y')?.type).toBe('fifo');
    expect(t.lookup('k')?.type).toBe('file');
    expect(t.lookup('w')?.type).toBe('dir');
    const inos = new Set([...t.paths()].map(([, n]) => n.ino));
    expect(inos.size).toBe(t.nodeCount);
  });

  it('finds every visible path by walking names, nodes by inode, dirs their parent; nothing else', () => {
    const all = new Map(tree.paths());
    expect([...all.keys()].sort()).toEqual(
      [
        '',
        'a',
        'a/file',
        'a/link1',
        'a/sub',
        'a/sub/x',
        'b',
        'b/link2',
        'b/chain',
        'gone',
        'opq',
        'sym',
        'suid',
      ].sort(),
    );
    for (const [path, node] of all) {
      expect(tree.lookup(path)).toBe(node);
      expect(tree.lookup(`/${path}`)).toBe(node);
      expect(tree.node(node.ino)).toBe(node);
      if (node.type === 'dir' && path !== '') {
        const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
        expect(tree.parentOf(node.ino)).toBe(all.get(parent)!.ino);
      }
    }
    expect(tree.parentOf(1)).toBe(1);
    expect(tree.lookup('a/')).toBe(all.get('a'));
    expect(tree.lookup('/')).toBe(tree.root);
    for (const miss of ['a//file', 'a/file/x', 'nope', 'a/nope', 'dangling', 'a/./file'])
      expect(tree.lookup(miss)).toBeUndefined();
    for (const ino of [0, -1, 1.5, 10_000]) {
      expect(tree.node(ino)).toBeUndefined();
      expect(tree.parentOf(ino)).toBeUndefined();
    }
    // Nodes without xattrs share one empty map; a node with some has its own.
    expect(tree.lookup('a/file')!.xattrs).toBe(tree.lookup('suid')!.xattrs);
    expect([...tree.lookup('opq')!.xattrs.keys()]).toEqual(['user.k']);
  });
});
