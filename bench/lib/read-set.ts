// Runs read-set.mjs in a child process over a tree (a Ferry mount or an extracted copy) and returns its figures.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { ReadOp } from './image-1g.js';

const run = promisify(execFile);
const SCRIPT = resolve(import.meta.dirname, 'read-set.mjs');

export interface KindStats {
  ops: number;
  bytes: number;
  /** Sum of the ops' latencies (they overlap under concurrency). */
  ms: number;
  maxMs: number;
}

export interface ReadSetResult {
  ttfbMs: number;
  totalMs: number;
  bytes: number;
  errors: string[];
  /** Covers every op's bytes in plan order: equal digests mean equal contents. */
  digest: string;
  byKind: Record<string, KindStats>;
}

/** Reads `ops` under `root` from a child process: the first op alone, then `concurrency` at a time. */
export async function readSet(
  root: string,
  ops: readonly ReadOp[],
  concurrency: number,
): Promise<ReadSetResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-plan-'));
  try {
    const plan = join(dir, 'plan.json');
    writeFileSync(plan, JSON.stringify({ root, concurrency, ops }));
    const { stdout } = await run(process.execPath, [SCRIPT, plan], { maxBuffer: 64 << 20 });
    return JSON.parse(stdout) as ReadSetResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
