// Probes bench/fuse-engines.ts runs against a mount, each in a child process: dd with O_DIRECT, sha256sum, and
// rand-read.mjs (4 KiB O_DIRECT random reads), whose every read is checked here against a reference copy.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { elapsed } from './report.js';

const run = promisify(execFile);
const RAND_READ = resolve(import.meta.dirname, 'rand-read.mjs');
const BLOCK = 4096;

/** `dd if=<path> of=/dev/null bs=1M iflag=direct`: every 1 MiB read goes to the filesystem, no page cache. */
export async function ddDirect(path: string): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  const { stderr } = await run('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M', 'iflag=direct']);
  const ms = elapsed(t0);
  const m = /^(\d+) bytes/m.exec(stderr);
  if (!m) throw new Error(`dd printed no byte count: ${stderr}`);
  return { bytes: Number(m[1]), ms };
}

export async function sha256sum(path: string): Promise<string> {
  const { stdout } = await run('sha256sum', [path]);
  return stdout.split(' ')[0] ?? '';
}

export interface RandomResult {
  reads: number;
  perSec: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

interface RandReadOutput {
  reads: number;
  ms: number;
  latUs: { p50: number; p99: number; max: number };
  blocks: number[];
  digest: string;
}

/**
 * Random 4 KiB O_DIRECT reads of `path` for `seconds` in a child; then the same blocks read from `reference`
 * (a local copy) must hash the same, so every byte the child read is checked.
 */
export async function randomReads(path: string, seconds: number, reference: string): Promise<RandomResult> {
  const { stdout } = await run(process.execPath, [RAND_READ, path, String(seconds), '0x5eed'], {
    maxBuffer: 256 << 20,
  });
  const out = JSON.parse(stdout) as RandReadOutput;
  const want = createHash('sha256');
  const buf = Buffer.allocUnsafe(BLOCK);
  const fd = openSync(reference, 'r');
  try {
    for (const b of out.blocks) {
      if (readSync(fd, buf, 0, BLOCK, b * BLOCK) !== BLOCK)
        throw new Error(`reference too short at block ${b}`);
      want.update(buf);
    }
  } finally {
    closeSync(fd);
  }
  if (want.digest('hex') !== out.digest)
    throw new Error(`random reads of ${path} returned other bytes than ${reference} (${out.reads} reads)`);
  return {
    reads: out.reads,
    perSec: out.reads / (out.ms / 1000),
    p50Us: out.latUs.p50,
    p99Us: out.latUs.p99,
    maxUs: out.latUs.max,
  };
}
