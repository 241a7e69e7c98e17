// The zstd codec: frame scanning without decoding, span decoding from a frame start across frames and
// skippable frames, and typed errors (never partial bytes) for corrupt or truncated input. Frames come from
// the zstd CLI, as registries' layers do.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { compressZstdFrame, createZstdDecoder } from '../../src/codec/zstd-binding.js';
import { decodeZstdExact, decodeZstdSpan } from '../../src/codec/zstd-decode.js';
import { ZstdFrameScanner, isZstdMagic } from '../../src/codec/zstd-frames.js';
import { randomBytesSeeded, textPayload } from './payload.js';

function zstdCli(data: Buffer, ...args: string[]): Buffer {
  return execFileSync('zstd', ['-q', '-c', ...args], { input: data, maxBuffer: 1 << 30 });
}

function skippableFrame(payload: Buffer, magicLow = 0): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(0x184d2a50 + magicLow, 0);
  h.writeUInt32LE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

const a = textPayload(700_000, 1);
const b = randomBytesSeeded(300_000, 2);
const c = textPayload(5_000, 3);
const fa = zstdCli(a, '-3', '--single-thread');
const fb = zstdCli(b, '-3', '--single-thread', '--no-check');
const fc = zstdCli(c, '-19');
const multi = Buffer.concat([fa, skippableFrame(Buffer.from('metadata'), 7), fb, fc]);
const plain = Buffer.concat([a, b, c]);

describe('ZstdFrameScanner', () => {
  it('finds every frame boundary, skippable ones included, whatever the piece sizes', () => {
    const want = [fa.length, fa.length + 16, fa.length + 16 + fb.length, multi.length];
    for (const step of [1, 7, 4096, multi.length]) {
      const s = new ZstdFrameScanner('t');
      const ends: number[] = [];
      for (let i = 0; i < multi.length; i += step) ends.push(...s.push(multi.subarray(i, i + step)));
      s.finish();
      expect(ends).toEqual(want);
      expect(s.frames.map((f) => f.skippable)).toEqual([false, true, false, false]);
      expect(s.frames[2]!.start).toBe(fa.length + 16);
    }
  });

  it('rejects garbage between frames and a stream cut inside a frame', () => {
    const s = new ZstdFrameScanner('layer x');
    expect(() => s.push(Buffer.concat([fc, Buffer.from('not zstd')]))).toThrow(FormatError);
    const t = new ZstdFrameScanner('layer x');
    t.push(fa.subarray(0, fa.length - 1));
    expect(() => t.finish()).toThrow(/truncated inside a frame/);
    expect(() => new ZstdFrameScanner('e').finish()).toThrow(FormatError);
  });

  it('recognises the magic', () => {
    expect(isZstdMagic(fa)).toBe(true);
    expect(isZstdMagic(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe(false);
  });
});

describe('decodeZstdSpan', () => {
  it('decodes exactly [skip, skip+size) from a frame start, across frames and skippable frames', () => {
    for (const [skip, size] of [
      [0, 10],
      [123_456, 1000],
      [a.length - 50, 100], // crosses from the first frame, over the skippable one, into the second
      [a.length + b.length - 1, c.length + 1],
      [0, plain.length],
    ] as const) {
      expect(decodeZstdSpan(multi, skip, size, 't').equals(plain.subarray(skip, skip + size))).toBe(true);
    }
    const fromSecond = multi.subarray(fa.length + 16);
    expect(decodeZstdSpan(fromSecond, 10, 20, 't').equals(b.subarray(10, 30))).toBe(true);
  });

  it('needs only the compressed bytes up to where the output is complete', () => {
    // Output of the first block(s) comes out before the frame is complete.
    const need = 1000;
    let cut = 0;
    let produced = 0;
    const d = createZstdDecoder('t');
    for (; cut < fa.length && produced < need; cut += 1024) {
      d.decode(fa.subarray(cut, cut + 1024), (p) => {
        produced += p.length;
        return false;
      });
    }
    expect(cut).toBeLessThan(fa.length);
    expect(decodeZstdSpan(fa.subarray(0, cut), 0, need, 't').equals(a.subarray(0, need))).toBe(true);
  });

  it('throws FormatError, never partial bytes, on truncated, corrupt or non-zstd spans', () => {
    expect(() => decodeZstdSpan(fa.subarray(0, fa.length - 100), 0, a.length, 'layer l chunk 3')).toThrow(
      /layer l chunk 3: zstd span ended after/,
    );
    expect(() => decodeZstdSpan(Buffer.from('hello world'), 0, 5, 't')).toThrow(FormatError);
    const corrupt = Buffer.from(fa);
    for (let i = 20; i < corrupt.length; i += 997) corrupt[i]! ^= 0x5a;
    expect(() => decodeZstdSpan(corrupt, 0, a.length, 't')).toThrow(FormatError);
    // Flipping the stored checksum leaves the content intact: libzstd still refuses the frame.
    const badSum = Buffer.from(fc);
    badSum[badSum.length - 1]! ^= 1;
    expect(() => decodeZstdSpan(badSum, 0, c.length, 't')).toThrow(/checksum|corrupt/i);
  });

  it('size 0 returns an empty buffer', () => {
    expect(decodeZstdSpan(fa, 5, 0, 't').length).toBe(0);
  });
});

describe('decodeZstdExact', () => {
  it('decodes one frame of known size and rejects other sizes or truncation', () => {
    const f = compressZstdFrame(c, 3);
    expect(decodeZstdExact(f, c.length, 't').equals(c)).toBe(true);
    expect(() => decodeZstdExact(f, c.length - 1, 't')).toThrow(FormatError);
    expect(() => decodeZstdExact(f, c.length + 1, 't')).toThrow(FormatError);
    expect(() => decodeZstdExact(f.subarray(0, f.length - 3), c.length, 't')).toThrow(FormatError);
  });
});
