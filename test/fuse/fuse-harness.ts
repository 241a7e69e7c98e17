// Test harness for real FUSE mounts: mounts an identity-codec layer in this process and runs tools against it
// only from child processes (async), never from this process (protocols §7.1 deadlock hazard).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import { silentLogger } from '../../src/log.js';
import { LayerReader } from '../../src/layer/layer-reader.js';
import { LayerTree } from '../../src/layer/layer-tree.js';
import { mountLayer, type MountedLayer, type MountLayerOptions } from '../../src/fuse/mount.js';
import type { BlobReader } from '../../src/image/blob-reader.js';
import { composeSource, type ComposedSource } from '../../src/source/compose.js';
import { identityFetch } from '../helpers/identity-layer.js';
import { fuseTimings } from '../helpers/fuse-timings.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command in a child process; never rejects (the exit code is in the result). */
export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

export async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export function requireRootAndFuse(): void {
  if (process.getuid?.() !== 0) throw new Error('FUSE integration tests must run as root');
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestMount {
  mount: MountedLayer;
  composed: ComposedSource;
  tree: LayerTree;
}

export async function mountTestLayer(
  index: LayerIndex,
  blob: BlobReader,
  mountpoint: string,
  extra: Partial<MountLayerOptions> = {},
): Promise<TestMount> {
  const log = silentLogger();
  const composed = composeSource({
    store: new MemoryChunkStore({ maxBytes: 256 * 1024 * 1024 }),
    origin: { blobFor: () => blob, fetch: identityFetch },
    concurrency: 8,
    log,
  });
  const tree = LayerTree.fromIndex(index);
  const reader = new LayerReader({ index, source: composed.source });
  const mount = await mountLayer({ mountpoint, tree, reader, log, timings: fuseTimings(), ...extra });
  return { mount, composed, tree };
}

/** Unmounts, falling back to fusermount -uz (for afterAll/finally). */
export async function safeUnmount(m: TestMount | undefined, mountpoint: string): Promise<void> {
  try {
    await m?.mount.unmount();
  } catch {
    await run('fusermount', ['-uz', mountpoint]);
  }
}
