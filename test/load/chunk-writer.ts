// Child process for the kill -9 tests: opens a DiskChunkStore and puts random chunks (1 B – 1 MiB) as fast as
// it can until killed, printing each digest after its put resolved (what a restart must find intact).
import { randomBytes } from 'node:crypto';
import { DiskChunkStore } from '../../src/chunks/disk-chunk-store.js';
import { sha256 } from '../../src/image/digest.js';
import { silentLogger } from '../../src/log.js';

const [dir, maxBytes] = process.argv.slice(2);
const store = new DiskChunkStore({ dir: dir!, maxBytes: Number(maxBytes), log: silentLogger() });
await store.open();
process.stdout.write('ready\n');
for (;;) {
  const bytes = randomBytes(1 + Math.floor(Math.random() ** 2 * (1 << 20)));
  const d = sha256(bytes);
  await store.put(d, bytes);
  process.stdout.write(`${d}\n`);
}
