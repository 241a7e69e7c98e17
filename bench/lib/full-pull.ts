// The baseline a lazy mount is compared with: pull every blob of the image (three downloads at a time, like
// dockerd's default) and extract the layers in order with `tar -xzf` as their downloads complete.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { parseReference } from '../../src/image/reference.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { elapsed } from './report.js';

export interface FullPullResult {
  /** Resolve + every blob downloaded. */
  pullMs: number;
  /** Until the last layer is extracted (downloads and extraction overlap). */
  totalMs: number;
  /** Time spent inside `tar -xzf`, summed over layers. */
  extractMs: number;
  blobBytes: number;
}

function untar(blob: Buffer, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-xzf', '-', '-C', dir], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    tar.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    tar.on('error', reject);
    tar.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`tar -xzf exited ${code}: ${stderr}`)),
    );
    tar.stdin.end(blob);
  });
}

export async function fullPull(
  client: RegistryClient,
  refText: string,
  dir: string,
): Promise<FullPullResult> {
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const image = await client.resolve(parseReference(refText));
  const layers = image.manifest.layers;
  const doneAtMs: number[] = [];
  // Three downloads at a time, started in layer order.
  let next = 0;
  const results: Array<Promise<Buffer>> = [];
  const waiting: Array<() => void> = [];
  const fetchLayer = async (i: number): Promise<Buffer> => {
    const l = layers[i]!;
    const blob = await client.fetchBlob(image.ref, l.digest, l.size);
    doneAtMs[i] = elapsed(t0);
    waiting.shift()?.();
    return blob;
  };
  for (const [i] of layers.entries()) {
    if (next < 3) {
      next++;
      results.push(fetchLayer(i));
    } else {
      results.push(new Promise<void>((r) => waiting.push(r)).then(() => fetchLayer(i)));
    }
  }
  let extractMs = 0;
  let blobBytes = 0;
  for (const d of results) {
    const blob = await d;
    blobBytes += blob.length;
    const t = performance.now();
    await untar(blob, dir);
    extractMs += elapsed(t);
  }
  return { pullMs: Math.max(...doneAtMs), totalMs: elapsed(t0), extractMs, blobBytes };
}
