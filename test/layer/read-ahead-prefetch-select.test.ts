// `ferry prefetch --files`: glob matching and the choice of files in the merged image (pure parts).
import { describe, expect, it } from 'vitest';
import { globRegExp, selectFiles } from '../../src/cli/prefetch-command.js';
import { buildIdentityLayer } from '../helpers/identity-layer.js';

describe('ferry prefetch file selection', () => {
  it('matches globs like a shell: * and ? in a segment, ** across, [] classes', () => {
    const m = (g: string, p: string): boolean => globRegExp(g).test(p);
    expect(m('*.safetensors', 'model.safetensors')).toBe(true);
    expect(m('*.safetensors', 'model.safetensors.json')).toBe(false);
    expect(m('models/*.gguf', 'models/a.gguf')).toBe(true);
    expect(m('models/*.gguf', 'models/x/a.gguf')).toBe(false);
    expect(m('**/*.gguf', 'models/x/a.gguf')).toBe(true);
    expect(m('**/*.gguf', 'a.gguf')).toBe(true);
    expect(m('shard-0000[12].bin', 'shard-00002.bin')).toBe(true);
    expect(m('shard-0000[12].bin', 'shard-00003.bin')).toBe(false);
    expect(m('a?c.(x)', 'abc.(x)')).toBe(true);
  });

  it('takes the topmost version of each path, skips replaced and whited-out ones, matches base names', () => {
    const big = Buffer.alloc(5000, 1);
    const lower = buildIdentityLayer(
      [
        { path: 'models/a.safetensors', content: big },
        { path: 'models/gone.safetensors', content: big },
        { path: 'models/replaced.safetensors', content: big },
        { path: 'models/readme.txt', content: 'hi' },
      ],
      { chunkSizeBytes: 1000 },
    ).index;
    const upper = buildIdentityLayer(
      [
        { path: 'models/gone.safetensors', type: 'whiteout' },
        { path: 'models/replaced.safetensors', type: 'symlink', linkTarget: 'a.safetensors' },
        { path: 'deep/x/b.safetensors', content: big.subarray(0, 2500) },
      ],
      { chunkSizeBytes: 1000 },
    ).index;
    const picked = selectFiles([lower, upper], ['*.safetensors']);
    expect(picked.map((f) => [f.layer, f.path, f.size])).toEqual([
      [1, 'deep/x/b.safetensors', 2500],
      [0, 'models/a.safetensors', 5000],
    ]);
    expect(picked[1]!.chunks.length).toBeGreaterThanOrEqual(5);
    expect(selectFiles([lower, upper], ['models/*.txt']).map((f) => f.path)).toEqual(['models/readme.txt']);
  });
});
