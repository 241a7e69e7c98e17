// Child-process reader for benchmarks (never read a FUSE mount from the process serving it): reads a list of
// file ranges under a root, the first one alone (time to first byte) and the rest `concurrency` at a time.
// Usage: node read-set.mjs <plan.json>   plan: { root, concurrency, ops: [{ path, offset, length, kind }] }
// Prints { ttfbMs, totalMs, bytes, errors, digest, byKind: { kind: { ops, bytes, ms, maxMs } } } as JSON;
// `digest` covers every op's bytes in plan order, so two trees can be compared without a second pass.
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const plan = JSON.parse(await readFile(process.argv[2], 'utf8'));
const buf = Buffer.allocUnsafe(1 << 20);
const result = { ttfbMs: 0, totalMs: 0, bytes: 0, errors: [], digest: '', byKind: {} };
const opDigests = new Array(plan.ops.length).fill('');

async function readOp(op, i) {
  const t0 = performance.now();
  const fh = await open(join(plan.root, op.path), 'r');
  let got = 0;
  const hash = createHash('sha1');
  try {
    const mine = op === plan.ops[0] ? buf : Buffer.allocUnsafe(Math.min(op.length, 1 << 20));
    while (got < op.length) {
      const { bytesRead } = await fh.read(mine, 0, Math.min(mine.length, op.length - got), op.offset + got);
      if (bytesRead === 0) break;
      hash.update(mine.subarray(0, bytesRead));
      got += bytesRead;
    }
  } finally {
    await fh.close();
  }
  const ms = performance.now() - t0;
  opDigests[i] = hash.digest('hex');
  const k = (result.byKind[op.kind] ??= { ops: 0, bytes: 0, ms: 0, maxMs: 0 });
  k.ops++;
  k.bytes += got;
  k.ms += ms;
  k.maxMs = Math.max(k.maxMs, ms);
  result.bytes += got;
  return ms;
}

const t0 = performance.now();
try {
  result.ttfbMs = await readOp(plan.ops[0], 0);
} catch (e) {
  result.errors.push(`${plan.ops[0].path}: ${e.code ?? e.message}`);
}
let next = 1;
async function worker() {
  while (next < plan.ops.length) {
    const i = next++;
    const op = plan.ops[i];
    try {
      await readOp(op, i);
    } catch (e) {
      result.errors.push(`${op.path}: ${e.code ?? e.message}`);
    }
  }
}
await Promise.all(Array.from({ length: plan.concurrency }, worker));
result.totalMs = performance.now() - t0;
result.digest = createHash('sha256').update(opDigests.join('\n')).digest('hex');
process.stdout.write(JSON.stringify(result));
