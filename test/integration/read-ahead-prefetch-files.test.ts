// `ferry prefetch <ref> --files <glob>` warms the node's chunk cache with exactly the named files: a later
// `ferry mount` on that node reads them without touching the registry, and other files still come lazily.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { gzipLayer, pseudoRandom } from '../helpers/corpus.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild, startMount } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import tarStream from 'tar-stream';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const weights = pseudoRandom(6 * MiB, 71);
const other = pseudoRandom(3 * MiB, 72);
let registry: TestRegistry;
let client: RegistryClient;
const ref = (): string => `${registry.host}/warm:1`;

async function tarOf(files: Array<[string, Buffer]>): Promise<Buffer> {
  const pack = tarStream.pack();
  const parts: Buffer[] = [];
  pack.on('data', (b: unknown) => parts.push(b as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const [name, content] of files) pack.entry({ name, size: content.length }, content);
  pack.finalize();
  await done;
  return Buffer.concat(parts);
}

beforeAll(async () => {
  registry = await startRegistry();
  client = testRegistryClient();
  const tar = await tarOf([
    ['models/llm.safetensors', weights],
    ['models/tokenizer.bin', other],
  ]);
  await pushImage(client, ref(), { layers: [{ data: gzipLayer(tar), mediaType: MediaType.ociLayerGzip }] });
  await ferry(['index', ref(), '--push'], ferryEnv());
}, 120_000);

afterAll(async () => {
  await client?.close();
  await registry?.stop();
});

describe('ferry prefetch --files', () => {
  it('fetches only the matching files, and a later mount reads them from the cache', async () => {
    requireBuild();
    const env = ferryEnv();
    const { stdout } = await run(process.execPath, [
      FERRY_BIN,
      'prefetch',
      ref(),
      '--files',
      '*.safetensors',
      '--json',
      '--config',
      env.configPath,
    ]);
    const result = JSON.parse(stdout) as { files: Array<{ path: string }>; fetchedChunks: number };
    expect(result.files.map((f) => f.path)).toEqual(['/models/llm.safetensors']);
    expect(result.fetchedChunks).toBe(6);
    const again = await run(process.execPath, [
      FERRY_BIN,
      'prefetch',
      ref(),
      '--files',
      '*.safetensors',
      '--json',
      '--config',
      env.configPath,
    ]);
    expect((JSON.parse(again.stdout) as { fetchedChunks: number }).fetchedChunks).toBe(0);

    const target = join(env.dir, 'rootfs');
    const m = await startMount(ref(), target, env);
    try {
      const sum = await run('sha256sum', [join(target, 'models', 'llm.safetensors')]);
      expect(sum.stdout.split(' ')[0]).toBe(createHash('sha256').update(weights).digest('hex'));
    } finally {
      await ferry(['umount', target], env).catch(() => m.proc.kill('SIGTERM'));
    }
    const exit = await m.exited;
    const served = exit.unmounted?.['served'] as { origin: { chunks: number }; disk: { chunks: number } };
    expect(served.origin.chunks).toBe(0);
    expect(served.disk.chunks).toBeGreaterThanOrEqual(6);
  });
});
