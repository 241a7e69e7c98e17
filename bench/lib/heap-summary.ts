// Sums a V8 heap snapshot (.heapsnapshot) by node type and constructor name: where a process's JS heap goes,
// without a browser. Usage: node --import tsx/esm bench/lib/heap-summary.ts FILE [TOP]
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const file = process.argv[2];
if (file === undefined) throw new Error('usage: heap-summary.ts FILE [TOP]');
const top = Number(process.argv[3] ?? 30);
const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
  number,
  number,
  number,
];
const sums = new Map<string, { bytes: number; count: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += fields.length) {
  const type = types[snap.nodes[i + typeAt]!] ?? '?';
  const name = type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + nameAt]!]! : `(${type})`;
  const size = snap.nodes[i + sizeAt]!;
  total += size;
  const s = sums.get(name) ?? { bytes: 0, count: 0 };
  s.bytes += size;
  s.count += 1;
  sums.set(name, s);
}
console.log(`total self size ${(total / 2 ** 20).toFixed(1)} MiB`);
for (const [name, s] of [...sums].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
  console.log(
    `${(s.bytes / 2 ** 20).toFixed(1).padStart(8)} MiB ${String(s.count).padStart(9)}  ${name.slice(0, 80)}`,
  );
}
