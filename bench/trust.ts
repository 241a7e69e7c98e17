// Benchmark: the cost of trust. Cold start of one plain-gzip image on a new node, by where the node's trusted
// index comes from — a signed artifact, a bound image index (no key), a build from the layers (nothing
// published or trusted), and the same files as eStargz (its TOC) — on loopback and on a 200 Mbit/s tbf link, side
// by side in one run. Plus the CPU cost of one signature check, and of the background audit the containerd path
// runs for non-built roots (one more stream of the layer).
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { MediaType } from '../src/image/manifest.js';
import { simpleSigningPayload } from '../src/index/signature.js';
import { sha256 } from '../src/image/digest.js';
import { estargzFromLayer, gzipLayer, makeCorpus } from '../test/helpers/corpus.js';
import { FaultProxy } from '../test/helpers/fault-proxy.js';
import { ferry, ferryEnv } from '../test/helpers/ferry-cli.js';
import { pushImage } from '../test/helpers/push-image.js';
import { keyPair } from '../test/helpers/signing-key.js';
import { startBenchRegistry } from './lib/bench-registry.js';
import { mountOnNewNode } from './lib/ferry-node.js';
import type { ReadOp } from './lib/image-1g.js';
import { readSet } from './lib/read-set.js';
import {
  elapsed,
  emitResults,
  fmtMB,
  fmtMs,
  fmtRatio,
  parseArgs,
  say,
  type ResultRow,
} from './lib/report.js';
import { createShapedLink, type ShapedLink } from './lib/shaped-link.js';

const LINK_MBIT = 200;

interface Variant {
  name: string;
  ref: string;
  trustedKeys: string[];
}

interface Outcome {
  variant: string;
  link: string;
  mountMs: number;
  readyMs: number;
  mountBytes: number;
  readyBytes: number;
  trust: string;
}

/** Every 25th small file whole, and the first MiB of each big file: a start that reads a few percent. */
function workingSet(layerDir: string): ReadOp[] {
  const ops: ReadOp[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (st === undefined) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        const path = relative(layerDir, p);
        if (st.size > 1 << 20) ops.push({ path, offset: 0, length: 1 << 20, kind: 'big' });
        else if (ops.length % 25 === 0 || path.endsWith('.sh'))
          ops.push({ path, offset: 0, length: st.size, kind: 'small' });
        else ops.push({ path, offset: 0, length: 0, kind: 'skip' });
      }
    }
  };
  walk(layerDir);
  return ops.filter((o) => o.kind !== 'skip');
}

async function coldStart(
  v: Variant,
  proxy: FaultProxy,
  link: string,
  ops: readonly ReadOp[],
): Promise<Outcome> {
  proxy.resetStats();
  const t0 = performance.now();
  const node = await mountOnNewNode(v.ref, '[prefetch]\nenabled = false\n', v.trustedKeys);
  const mountMs = elapsed(t0);
  const mountBytes = proxy.stats.blobBytes;
  const trust = (node.mounted['layers'] as Array<{ trust: string }>)
    .map((l) => l.trust.split(' ')[0])
    .join(',');
  try {
    const r = await readSet(node.target, ops, 8);
    if (r.errors.length > 0) throw new Error(`${v.name}: reads failed: ${r.errors.join(', ')}`);
    const o = {
      variant: v.name,
      link,
      mountMs,
      readyMs: elapsed(t0),
      mountBytes,
      readyBytes: proxy.stats.blobBytes,
      trust,
    };
    say(
      `${link.padEnd(9)} ${v.name.padEnd(8)} mount ${fmtMs(o.mountMs).padStart(8)} (${fmtMB(o.mountBytes)})  ` +
        `ready ${fmtMs(o.readyMs).padStart(8)} (${fmtMB(o.readyBytes)})  trust: ${trust}`,
    );
    return o;
  } finally {
    await node.stop();
    rmSync(node.env.dir, { recursive: true, force: true });
  }
}

function signatureCost(): { signUs: number; verifyUs: number } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const payload = simpleSigningPayload('registry.example/app', sha256('artifact'));
  const n = 2000;
  let t = performance.now();
  const sigs: Buffer[] = [];
  for (let i = 0; i < n; i++) sigs.push(sign('sha256', payload, privateKey));
  const signUs = (elapsed(t) * 1000) / n;
  t = performance.now();
  for (const s of sigs) if (!verify('sha256', payload, publicKey, s)) throw new Error('verify failed');
  return { signUs, verifyUs: (elapsed(t) * 1000) / n };
}

async function main(): Promise<void> {
  const args = parseArgs();
  const work = mkdtempSync(join(tmpdir(), 'ferry-bench-trust-'));
  const corpus = makeCorpus(work, {
    smallFiles: args.quick ? 1500 : 4000,
    bigFileBytes: args.quick ? 8 << 20 : 24 << 20,
  });
  const gz = corpus.map((l) => gzipLayer(l.tar));
  const esgz = await Promise.all(corpus.map((l) => estargzFromLayer(l)));
  const imageBytes = gz.reduce((a, b) => a + b.length, 0);
  const bench = await startBenchRegistry();
  const outcomes: Outcome[] = [];
  let link: ShapedLink | undefined;
  let shaped: FaultProxy | undefined;
  const publisher = ferryEnv();
  try {
    await pushImage(bench.client, `${bench.registry.host}/trust/app:gzip`, {
      layers: gz.map((data) => ({ data, mediaType: MediaType.ociLayerGzip })),
    });
    await pushImage(bench.client, `${bench.registry.host}/trust/app:estargz`, {
      layers: esgz.map((e) => ({
        data: e.blob,
        mediaType: MediaType.ociLayerGzip,
        annotations: { 'containerd.io/snapshot/stargz/toc.digest': e.tocDigest },
      })),
    });
    const t = performance.now();
    await ferry(['index', `${bench.registry.host}/trust/app:gzip`, '--push', '--bind', 'bound'], publisher);
    say(
      `# trust: ${corpus.length} layers, ${fmtMB(imageBytes)} gzip; publisher signed + bound in ${fmtMs(elapsed(t))}`,
    );
    const ops = workingSet(corpus[0]!.dir);
    say(`working set: ${ops.length} reads, ${fmtMB(ops.reduce((a, o) => a + o.length, 0))}`);
    const variants = (host: string): Variant[] => [
      { name: 'signed', ref: `${host}/trust/app:gzip`, trustedKeys: [keyPair().publicPath] },
      { name: 'bound', ref: `${host}/trust/app:bound`, trustedKeys: [] },
      { name: 'built', ref: `${host}/trust/app:gzip`, trustedKeys: [] },
      { name: 'estargz', ref: `${host}/trust/app:estargz`, trustedKeys: [] },
    ];
    for (const v of variants(bench.proxy.host))
      outcomes.push(await coldStart(v, bench.proxy, 'loopback', ops));
    link = await createShapedLink({
      rateMbit: LINK_MBIT,
      registryDataDir: bench.dataDir,
      loopbackRegistryHost: bench.registry.host,
      workDir: work,
      log: (l) => say(l),
    });
    say(`shaped link: ${link.description}`);
    shaped = await new FaultProxy(link.registryHost).start();
    for (const v of variants(shaped.host)) outcomes.push(await coldStart(v, shaped, `${LINK_MBIT}mbit`, ops));
  } finally {
    await shaped?.stop();
    await link?.close();
    await bench.close();
    rmSync(publisher.dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
  const sig = signatureCost();
  say(`signature (P-256): sign ${sig.signUs.toFixed(0)} µs, verify ${sig.verifyUs.toFixed(0)} µs`);
  const rows: ResultRow[] = [];
  for (const l of [...new Set(outcomes.map((o) => o.link))]) {
    const of = (v: string) => outcomes.find((o) => o.link === l && o.variant === v)!;
    const base = of('estargz');
    for (const v of ['signed', 'bound', 'built']) {
      rows.push({
        metric: `time to ready, ${v} vs eStargz (${l})`,
        ferry: fmtMs(of(v).readyMs),
        baseline: fmtMs(base.readyMs),
        ratio: fmtRatio(of(v).readyMs / base.readyMs),
        target: v === 'built' ? 'n/a' : '<= 1.2x',
      });
      rows.push({
        metric: `bytes to ready, ${v} vs eStargz (${l})`,
        ferry: fmtMB(of(v).readyBytes),
        baseline: fmtMB(base.readyBytes),
        ratio: fmtRatio(of(v).readyBytes / base.readyBytes),
        target: 'n/a',
      });
    }
  }
  rows.push({
    metric: 'signature verify (P-256)',
    ferry: `${sig.verifyUs.toFixed(0)} µs`,
    baseline: '-',
    ratio: 'n/a',
    target: 'n/a',
  });
  emitResults('trust', rows, [
    `image ${fmtMB(imageBytes)} gzip; the audit on the containerd path costs one more stream of each non-built layer, in the background`,
  ]);
}

await main();
