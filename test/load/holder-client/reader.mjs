// The holder test's "container": reads random 128 KiB ranges of <mnt>/data for <ms>, checking each byte
// against the server's pattern; a fresh open per read. Prints {reads, errors, mismatches, maxMs}.
import { open } from 'node:fs/promises';
const [path, ms] = process.argv.slice(2);
const FILE_BYTES = 8 << 20;
const byteAt = (i) => (i * 31 + (i >> 12)) & 0xff;
const out = { reads: 0, errors: [], mismatches: 0, maxMs: 0 };
const end = Date.now() + Number(ms);
while (Date.now() < end) {
  const offset = Math.floor(Math.random() * (FILE_BYTES - 131072));
  const t0 = performance.now();
  try {
    const fh = await open(path, 'r');
    const b = Buffer.alloc(131072);
    const { bytesRead } = await fh.read(b, 0, b.length, offset);
    await fh.close();
    if (bytesRead !== b.length) out.mismatches++;
    for (let i = 0; i < bytesRead; i += 97)
      if (b[i] !== byteAt(offset + i)) {
        out.mismatches++;
        break;
      }
    out.reads++;
  } catch (e) {
    if (out.errors.length < 10) out.errors.push(String(e.code ?? e));
  }
  out.maxMs = Math.max(out.maxMs, performance.now() - t0);
}
console.log(JSON.stringify(out));
