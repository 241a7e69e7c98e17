// Deterministic test payloads: text-like data that deflates into many blocks with varied bit offsets.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Checkpoint, Chunk, LayerIndex } from '../../src/image/layer-index.js';
import { sha256 } from '../../src/image/digest.js';

/** xorshift32, so payloads are the same on every run. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

const WORDS = 'lorem ipsum dolor sit amet ferry chunk layer index zran window inflate deflate gzip tar'.split(
  ' ',
);

export function textPayload(bytes: number, seed: number): Buffer {
  const r = rng(seed);
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const w = r() < 0.1 ? Math.floor(r() * 1e9).toString(36) : WORDS[Math.floor(r() * WORDS.length)]!;
    parts.push(w);
    n += w.length + 1;
  }
  return Buffer.from(parts.join(' ')).subarray(0, bytes);
}

export function randomBytesSeeded(bytes: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** Runs a command with `input` on stdin, returning stdout. */
export function pipe(cmd: string, args: string[], input: Buffer): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 1 << 30 });
}

/** GNU gzip of `data` at a level, via a temp file (keeps the file name field out of the header). */
export function gnuGzip(data: Buffer, level: number): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-gz-'));
  const f = join(dir, 'data');
  writeFileSync(f, data);
  const out = execFileSync('gzip', [`-${level}`, '-c', f], { maxBuffer: 1 << 30 });
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** A zran LayerIndex holding arbitrary chunks over given checkpoints, for exercising decodeChunk. */
export function zranIndex(
  checkpoints: readonly Checkpoint[],
  windows: readonly Uint8Array[],
  chunks: readonly Chunk[],
  compressedSize: number,
): LayerIndex {
  return {
    version: 1,
    layerDigest: sha256('test-layer'),
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    format: 'gzip',
    codec: 'zran',
    compressedSize,
    uncompressedSize: 0,
    entries: [],
    chunks,
    checkpoints,
    windows,
    build: { tool: 'test', createdAt: new Date(0).toISOString(), durationMs: 0 },
  };
}

export function chunkFrom(
  cpIndex: number,
  cp: Checkpoint,
  offset: number,
  data: Buffer,
  size: number,
  compressedEnd: number,
): Chunk {
  return {
    digest: sha256(data.subarray(offset, offset + size)),
    offset,
    size,
    compressedStart: cp.memberStart || cp.bits === 0 ? cp.compressedOffset : cp.compressedOffset - 1,
    compressedEnd,
    checkpoint: cpIndex,
    skip: offset - cp.uncompressedOffset,
  };
}
