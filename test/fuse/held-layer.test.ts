// Adoption safety: a daemon may serve a mount its predecessor left with the holder only when its tree gives
// every node id the kernel may have cached the same file — the fingerprint recorded with the mount says so.
import { describe, expect, it } from 'vitest';
import type { HeldMount } from '../../src/fuse/holder/client.js';
import { canAdopt, treeFingerprint } from '../../src/fuse/raw/held-layer.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { deserializeIndex, serializeIndex } from '../../src/index/serialize.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { buildIdentityLayer } from '../helpers/identity-layer.js';

const files = [
  { path: 'bin/sh', content: '#!', mode: 0o755 },
  { path: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
  { path: 'etc/hosts', content: '127.0.0.1 localhost\n' },
];
const { index } = buildIdentityLayer(files);

function held(tree: LayerTree, layer: string = tree.index.layerDigest): HeldMount {
  return { id: '/m', mountpoint: '/m', meta: { layer, tree: treeFingerprint(tree) } };
}

describe('held-layer adoption', () => {
  it('accepts the same index, also after a serialize/deserialize round trip', () => {
    const tree = LayerTree.fromIndex(index);
    const reloaded = LayerTree.fromIndex(deserializeIndex(serializeIndex(index)));
    expect(treeFingerprint(reloaded)).toBe(treeFingerprint(tree));
    expect(canAdopt(held(tree), reloaded)).toBe(true);
  });

  it('refuses a tree whose node ids name other files (same layer digest, entries in another order)', () => {
    const tree = LayerTree.fromIndex(index);
    const reordered: LayerIndex = { ...index, entries: [...index.entries].reverse() };
    const other = LayerTree.fromIndex(reordered);
    expect(other.lookup('etc/passwd')?.ino).not.toBe(tree.lookup('etc/passwd')?.ino);
    expect(canAdopt(held(tree), other)).toBe(false);
  });

  it('refuses a tree where one file changed size or mode, and a mount of another layer', () => {
    const tree = LayerTree.fromIndex(index);
    const grown = LayerTree.fromIndex({
      ...index,
      entries: index.entries.map((e) => (e.path === 'etc/hosts' ? { ...e, size: e.size + 1 } : e)),
    });
    const chmod = LayerTree.fromIndex({
      ...index,
      entries: index.entries.map((e) => (e.path === 'bin/sh' ? { ...e, mode: 0o700 } : e)),
    });
    expect(canAdopt(held(tree), grown)).toBe(false);
    expect(canAdopt(held(tree), chmod)).toBe(false);
    expect(canAdopt(held(tree, `sha256:${'0'.repeat(64)}`), tree)).toBe(false);
    expect(canAdopt({ id: '/m', mountpoint: '/m', meta: {} }, tree)).toBe(false);
  });
});
