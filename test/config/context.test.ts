// The node context applies command-line overrides of the config with the config's own bounds.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createContext } from '../../src/node/context.js';

describe('createContext', () => {
  it('takes `ferry index --chunk-size` over [index] chunkSizeBytes, within the same bounds', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-chunk-ctx-'));
    const configPath = join(dir, 'config.toml');
    await writeFile(
      configPath,
      `[daemon]\nstateDir = "${dir}/state"\nlogLevel = "silent"\n[registry]\ndockerConfig = false\n`,
    );
    const ctx = await createContext({ configPath, logLevel: 'silent', indexChunkSizeBytes: 256 * 1024 });
    try {
      expect(ctx.config.index.chunkSizeBytes).toBe(256 * 1024);
    } finally {
      await ctx.close();
    }
    const err = await createContext({ configPath, logLevel: 'silent', indexChunkSizeBytes: 1000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(String(err)).toMatch(/--chunk-size is invalid/);
  });
});
