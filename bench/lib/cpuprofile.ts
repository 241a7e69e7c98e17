// Reads V8 .cpuprofile files (`node --cpu-prof`) and splits their samples into Ferry's per-byte stages, so a
// profile's breakdown is reproducible from the file alone (bench/profile-summary.ts prints it).
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export const STAGES = [
  'fuse-protocol',
  'fuse-device-io',
  'holder-relay',
  'http-fetch',
  'inflate',
  'hash',
  'cache',
  'copies',
  'read-path',
  'index/tree',
  'gc',
  'other-js',
  'native/program',
  'idle',
] as const;
export type Stage = (typeof STAGES)[number];

export interface ProfileSummary {
  file: string;
  /** Wall time the profile covers, ms. */
  wallMs: number;
  /** Sampled time per stage, ms (idle included). */
  stages: Record<Stage, number>;
  /** Self time per function (`name url:line`), ms, highest first. */
  top: Array<{ fn: string; ms: number; stage: Stage }>;
}

const short = (url: string): string =>
  url.replace(/^file:\/\//, '').replace(/^.*\/(dist|src|node_modules)\//, '$1/');

/** The stage of a frame from its own name and file, or undefined when only its callers can tell. */
function frameStage(f: CallFrame): Stage | undefined {
  const u = f.url;
  const n = f.functionName;
  if (n === '(garbage collector)') return 'gc';
  if (n === '(idle)') return 'idle';
  if (n === '(program)') return 'native/program';
  if (/\/fuse\/holder\//.test(u)) return 'holder-relay';
  if (/\/fuse\/raw\/device\./.test(u)) return 'fuse-device-io';
  if (/\/fuse\/raw\/|\/fuse\/ops\.|\/fuse\/attrs\.|\/fuse\/demand-read\./.test(u)) return 'fuse-protocol';
  if (/undici|node:internal\/deps\/undici|\/registry\//.test(u)) return 'http-fetch';
  if (/\/codec\/|node:zlib|pako|zstd/.test(u)) return 'inflate';
  if (/\/chunks\/|\/source\/store-through\./.test(u)) return 'cache';
  if (/\/source\/verify\./.test(u)) return 'hash';
  if (/\/source\/|\/layer\/|\/prefetch\//.test(u)) return 'read-path';
  if (/\/index\/|\/image\//.test(u)) return 'index/tree';
  return undefined;
}

/** Leaf names that say what the work is whoever called them. */
function leafStage(f: CallFrame): Stage | undefined {
  const n = f.functionName;
  if (f.url === '' || f.url.startsWith('node:')) {
    if (/^(update|digest|Hash|createHash|hash)$/.test(n) || /node:internal\/crypto\/hash/.test(f.url))
      return 'hash';
    if (
      /^(copy|concat|_copyActual|set|allocUnsafe|allocUnsafeSlow|from|subarray|slice|fill|compare|equals)$/.test(
        n,
      )
    )
      return 'copies';
    if (/node:internal\/crypto/.test(f.url)) return 'hash';
  }
  return undefined;
}

/** Parses one profile and returns its stages and top functions. */
export function summarise(file: string, topN = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const stageOf = new Map<number, Stage>();
  const classify = (id: number): Stage => {
    const known = stageOf.get(id);
    if (known !== undefined) return known;
    const leaf = byId.get(id)!;
    let s = leafStage(leaf.callFrame);
    for (let cur: number | undefined = id; s === undefined && cur !== undefined; cur = parent.get(cur)) {
      s = frameStage(byId.get(cur)!.callFrame);
    }
    const stage = s ?? 'other-js';
    stageOf.set(id, stage);
    return stage;
  };
  const stages = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    // timeDeltas[i] is the gap before sample i; the time after the last sample is unknown, as in DevTools.
    const ms = (p.timeDeltas[i + 1] ?? 0) / 1000;
    stages[classify(id)] += ms;
    self.set(id, (self.get(id) ?? 0) + ms);
  }
  const perFn = new Map<string, { ms: number; stage: Stage }>();
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    // Keyed by stage too: one native function (a write, a read) serves several stages through its callers.
    const stage = classify(id);
    const key = `${stage}\t${f.functionName || '(anonymous)'} ${short(f.url)}:${f.lineNumber + 1}`;
    const e = perFn.get(key) ?? { ms: 0, stage };
    e.ms += ms;
    perFn.set(key, e);
  }
  const top = [...perFn.entries()]
    .map(([key, e]) => ({ fn: key.split('\t')[1]!, ms: e.ms, stage: e.stage }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, topN);
  return { file, wallMs: (p.endTime - p.startTime) / 1000, stages, top };
}

/** Printable lines: stages as ms and % of busy (non-idle) time, then the top functions by self time. */
export function formatSummary(s: ProfileSummary, label: string): string[] {
  const busy = STAGES.filter((k) => k !== 'idle').reduce((a, k) => a + s.stages[k], 0);
  const out = [
    `### ${label}: ${(s.wallMs / 1000).toFixed(2)} s profiled, ${(busy / 1000).toFixed(2)} s busy, ` +
      `${(s.stages.idle / 1000).toFixed(2)} s idle`,
  ];
  for (const k of STAGES) {
    if (k === 'idle' || s.stages[k] < 1) continue;
    out.push(
      `  ${k.padEnd(16)} ${(s.stages[k] / 1000).toFixed(3).padStart(8)} s ${((100 * s.stages[k]) / busy).toFixed(1).padStart(5)}%`,
    );
  }
  out.push('  top self time:');
  for (const t of s.top.filter((x) => x.stage !== 'idle').slice(0, 15)) {
    out.push(`    ${t.ms.toFixed(0).padStart(6)} ms  ${t.stage.padEnd(15)} ${t.fn}`);
  }
  return out;
}
