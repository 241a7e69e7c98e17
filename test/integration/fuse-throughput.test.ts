// Sequential read throughput through a real FUSE mount (dd in a child process): cold (origin + verify),
// warm (chunk store hits, page cache dropped on open), and with kernel_cache (page cache kept). Prints MB/s.
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chunksCovering } from '../../src/image/layer-index.js';
import { buildIdentityLayer } from '../helpers/identity-layer.js';
import { MemoryBlobReader } from '../helpers/memory-blob.js';
import {
  mountTestLayer,
  must,
  requireRootAndFuse,
  run,
  safeUnmount,
  tempDir,
  type TestMount,
} from '../fuse/fuse-harness.js';

requireRootAndFuse();

const SIZE = 64 * 1024 * 1024;
const content = randomBytes(SIZE);
const layer = buildIdentityLayer([{ path: 'big', content }], { chunkSizeBytes: 1024 * 1024 });

async function ddMBps(file: string): Promise<number> {
  const r = await run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M'], 120_000);
  expect(r.code).toBe(0);
  return SIZE / 1e6 / (r.ms / 1000);
}

describe('FUSE sequential read throughput', () => {
  const dir = tempDir('ferry-tput-');
  const mounts: [TestMount | undefined, string][] = [];
  afterAll(async () => {
    for (const [m, p] of mounts) await safeUnmount(m, p);
    dir.remove();
  });

  it('reads 64 MiB correctly and reports MB/s', async () => {
    const plain = join(dir.path, 'plain');
    const m1 = await mountTestLayer(layer.index, new MemoryBlobReader(layer.blob), plain, {
      kernelCache: false,
    });
    mounts.push([m1, plain]);
    const cold = await ddMBps(join(plain, 'big'));
    const warm = await ddMBps(join(plain, 'big'));
    const sum = (await must('sha256sum', [join(plain, 'big')])).split(' ')[0];
    expect(sum).toBe(createHash('sha256').update(content).digest('hex'));

    const cached = join(dir.path, 'cached');
    const m2 = await mountTestLayer(layer.index, new MemoryBlobReader(layer.blob), cached, {
      kernelCache: true,
    });
    mounts.push([m2, cached]);
    const kcCold = await ddMBps(join(cached, 'big'));
    const kcWarm = await ddMBps(join(cached, 'big'));
    console.log(
      `[throughput] 64 MiB, 1 MiB chunks: cold(origin+verify) ${cold.toFixed(0)} MB/s, ` +
        `warm(store, no kernel_cache) ${warm.toFixed(0)} MB/s, kernel_cache cold ${kcCold.toFixed(0)} MB/s, ` +
        `kernel_cache warm ${kcWarm.toFixed(0)} MB/s; origin chunks ${m1.composed.stats().origin.chunks}`,
    );
    const file = layer.index.entries.find((e) => e.path === 'big')!;
    // Each covering chunk crossed the origin exactly once across all three reads of the first mount.
    expect(m1.composed.stats().origin.chunks).toBe(
      chunksCovering(layer.index.chunks, file.dataOffset!, SIZE).length,
    );
    expect(warm).toBeGreaterThan(0);
  });
});
