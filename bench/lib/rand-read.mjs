// Child-process random reader for bench/fuse-engines.ts (never read a FUSE mount from the process serving it):
// 4 KiB reads at uniformly random 4 KiB-aligned offsets, O_DIRECT, one at a time, for a fixed time.
// Usage: node rand-read.mjs <file> <seconds> <seed>
// Prints { reads, ms, latUs: { p50, p99, max }, blocks, digest }: `blocks` lists every read's block number in
// order and `digest` is the SHA-256 of all bytes read in that order, so the caller can check every read.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

const [file, secondsArg, seedArg] = process.argv.slice(2);
const BLOCK = 4096;
const fd = openSync(file, constants.O_RDONLY | constants.O_DIRECT);
const blocksInFile = Math.floor(fstatSync(fd).size / BLOCK);
// Not necessarily aligned: FUSE's direct I/O path has no alignment rule (a disk filesystem would refuse it).
const buf = Buffer.allocUnsafeSlow(BLOCK);
let x = Number(seedArg) | 0 || 1;
const nextBlock = () => {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return (x >>> 0) % blocksInFile;
};
const hash = createHash('sha256');
const blocks = [];
const lat = [];
const stopAt = performance.now() + Number(secondsArg) * 1000;
const t0 = performance.now();
while (performance.now() < stopAt) {
  const b = nextBlock();
  const t = process.hrtime.bigint();
  const n = readSync(fd, buf, 0, BLOCK, b * BLOCK);
  lat.push(Number(process.hrtime.bigint() - t) / 1000);
  if (n !== BLOCK) throw new Error(`short read at block ${b}: ${n} bytes`);
  hash.update(buf);
  blocks.push(b);
}
const ms = performance.now() - t0;
closeSync(fd);
lat.sort((a, b) => a - b);
const pct = (p) => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil((p / 100) * lat.length) - 1))];
process.stdout.write(
  JSON.stringify({
    reads: blocks.length,
    ms,
    latUs: { p50: pct(50), p99: pct(99), max: lat.at(-1) },
    blocks,
    digest: hash.digest('hex'),
  }),
);
