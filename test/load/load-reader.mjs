// Child-process load generator: W async readers over several mounted images for a bounded time, each read a
// random range of a random file compared byte for byte with the reference tree; latencies in microseconds.
// Phase "warm" reads every listed file of every image once (filling Ferry's cache while prefetch runs);
// phase "measure" reads random ranges for durationMs, with O_DIRECT when the mount allows it, so the
// figures are Ferry's cached-read path rather than the kernel page cache. Prints one JSON object.
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const cfg = JSON.parse(process.argv[2]); // { images: [{ root, ref }], files: [{ path, size }], readers, durationMs, seed }
let seed = cfg.seed | 1;
const rand = (n) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const refs = new Map();
async function reference(img, path) {
  const k = `${img}\0${path}`;
  let b = refs.get(k);
  if (b === undefined) {
    b = await readFile(join(cfg.images[img].ref, path));
    refs.set(k, b);
  }
  return b;
}

const out = { warm: phase(), measure: phase(), direct: false, directError: '' };
function phase() {
  return { reads: 0, bytes: 0, errors: [], mismatches: [], lat: [] };
}

async function readAt(path, offset, length, flags) {
  const fh = await open(path, flags);
  try {
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

async function one(p, img, file, offset, length, flags) {
  const t0 = process.hrtime.bigint();
  try {
    const got = await readAt(join(cfg.images[img].root, file.path), offset, length, flags);
    p.lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    const want = (await reference(img, file.path)).subarray(offset, offset + length);
    if (!got.equals(want) && p.mismatches.length < 20)
      p.mismatches.push(`${img}:${file.path}@${offset}+${length}`);
    p.reads++;
    p.bytes += got.length;
  } catch (e) {
    if (p.errors.length < 20) p.errors.push(`${img}:${file.path}: ${e.code ?? e.message}`);
  }
}

// Warm: every (image, file) once, spread over the readers.
const work = [];
cfg.images.forEach((_, img) => cfg.files.forEach((f) => work.push([img, f])));
let next = 0;
await Promise.all(
  Array.from({ length: cfg.readers }, async () => {
    while (next < work.length) {
      const [img, f] = work[next++];
      await one(out.warm, img, f, 0, f.size, constants.O_RDONLY);
    }
  }),
);

let flags = constants.O_RDONLY;
try {
  const f = cfg.files[0];
  await readAt(join(cfg.images[0].root, f.path), 0, 4096, constants.O_RDONLY | constants.O_DIRECT);
  flags |= constants.O_DIRECT;
  out.direct = true;
} catch (e) {
  out.directError = String(e.code ?? e);
}

const end = Date.now() + cfg.durationMs;
await Promise.all(
  Array.from({ length: cfg.readers }, async () => {
    while (Date.now() < end) {
      const img = rand(cfg.images.length);
      const f = cfg.files[rand(cfg.files.length)];
      const length = Math.min(f.size, 4096 * (1 + rand(32)));
      const offset = f.size > length ? rand(f.size - length) : 0;
      await one(out.measure, img, f, offset, length, flags);
    }
  }),
);

function summary(p) {
  const lat = p.lat.sort((a, b) => a - b);
  const q = (x) => (lat.length === 0 ? 0 : lat[Math.min(lat.length - 1, Math.floor(x * lat.length))] / 1000);
  return {
    reads: p.reads,
    bytes: p.bytes,
    errors: p.errors,
    mismatches: p.mismatches,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxMs: q(1),
  };
}
process.stdout.write(
  JSON.stringify({
    warm: summary(out.warm),
    measure: summary(out.measure),
    direct: out.direct,
    directError: out.directError,
  }),
);
