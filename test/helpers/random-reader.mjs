// Child-process reader for concurrency tests: N workers read random ranges of random files under a mount and
// compare every byte with the same range of the reference tree. Prints {reads, bytes, mismatches, errors}.
import { open } from 'node:fs/promises';
import { join } from 'node:path';

const [mountDir, refDir, listJson, workersArg, readsArg, seedArg] = process.argv.slice(2);
const files = JSON.parse(listJson); // [{ path, size }]
const workers = Number(workersArg);
const readsPerWorker = Number(readsArg);
let seed = Number(seedArg) | 1;
const rand = (n) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const stats = { reads: 0, bytes: 0, mismatches: [], errors: [] };

async function readRange(path, offset, length) {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function worker() {
  for (let i = 0; i < readsPerWorker; i++) {
    const f = files[rand(files.length)];
    const offset = f.size === 0 ? 0 : rand(f.size);
    const length = 1 + rand(256 * 1024);
    try {
      const [got, want] = await Promise.all([
        readRange(join(mountDir, f.path), offset, length),
        readRange(join(refDir, f.path), offset, length),
      ]);
      stats.reads++;
      stats.bytes += got.length;
      if (!got.equals(want)) stats.mismatches.push(`${f.path}@${offset}+${length}`);
    } catch (e) {
      stats.errors.push(`${f.path}: ${e.code ?? e.message}`);
    }
  }
}

await Promise.all(Array.from({ length: workers }, worker));
process.stdout.write(JSON.stringify(stats));
