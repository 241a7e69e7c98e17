// Holder throughput probe: reads <file> sequentially in <blockBytes> reads for <ms> (a fresh pass each time the
// end is reached) and prints {requests, MBps, requestsPerSec}. Serve the file with HOLDER_DIRECT_IO=1 so every
// read reaches the FUSE server instead of the page cache.
import { open } from 'node:fs/promises';
const [path, block, ms] = process.argv.slice(2);
const size = Number(block);
const fh = await open(path, 'r');
const buf = Buffer.alloc(size);
let bytes = 0;
let requests = 0;
let pos = 0;
const t0 = performance.now();
while (performance.now() - t0 < Number(ms)) {
  const { bytesRead } = await fh.read(buf, 0, size, pos);
  if (bytesRead === 0) {
    pos = 0;
    continue;
  }
  pos += bytesRead;
  bytes += bytesRead;
  requests++;
}
const s = (performance.now() - t0) / 1000;
await fh.close();
console.log(
  JSON.stringify({
    block: size,
    requests,
    MBps: Math.round(bytes / s / 1e6),
    requestsPerSec: Math.round(requests / s),
  }),
);
