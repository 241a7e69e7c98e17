// Prefetch hints and daemon traces with real parts: Debian's docker-registry behind a counting proxy, `ferry
// daemon` processes, FUSE and overlayfs. Node A's daemon mounts an image's layers from CRI labels over the
// snapshots API, a child reads files through the overlay, and the trace saved at shutdown names those files.
// Node B's daemon gets a Hint (`ferry prefetch --wait`), fetches the shared trace's chunks, and a later mount
// on node B reads the same files without a single registry blob byte.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestHex } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { snapshotsClient } from '../api/grpc-client.js';
import {
  CTR_REMOTE_BINARY,
  daemonLogRecords,
  requireBinaries,
  startContainerd,
  startFerryDaemon,
  stopHolders,
  type RunningFerryDaemon,
} from '../helpers/containerd.js';
import { gzipLayer, makeCorpus } from '../helpers/corpus.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild, type FerryEnv } from '../helpers/ferry-cli.js';
import { prepareWithCriLabels } from '../helpers/cri-prepare.js';
import { diffId, pushImage, type PushedImage, type TestLayer } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';
import { ferryWith, readWorkingSet, spawnMount } from '../prefetch/mount-process.js';

const run = promisify(execFile);
const SMALL_FILES = 2000;
const CONFIG = `
[index]
chunkSizeBytes = 65536
spanBytes = 262144

[prefetch]
defaultBytesPerLayer = 0
quietMs = 600000
windowMs = 600000
`;
const WORKING_SET = [
  'usr/bin/tool',
  'usr/lib/layer2.bin',
  ...Array.from({ length: SMALL_FILES }, (_, i) => i)
    .filter((i) => i % 50 === 7)
    .map((i) => `usr/share/data/${String(Math.floor(i / 100)).padStart(3, '0')}/file-${i}.dat`),
];

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let layers: TestLayer[];
let pushed: PushedImage;
let ref: string;
const daemons: RunningFerryDaemon[] = [];

beforeAll(async () => {
  requireBuild();
  registry = await startRegistry();
  proxy = await new FaultProxy(registry.host).start();
  client = testRegistryClient();
  const corpus = makeCorpus(join(mkdtempSync(join(tmpdir(), 'ferry-pfh-')), 'src'), {
    smallFiles: SMALL_FILES,
    bigFileBytes: 2 * 1024 * 1024,
  });
  layers = corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip }));
  pushed = await pushImage(client, `${registry.host}/hint:1`, { layers });
  ref = `${proxy.host}/hint:1`;
  await ferry(['index', ref, '--push'], ferryEnv(CONFIG));
}, 300_000);

afterAll(async () => {
  for (const d of daemons) await d.stop().catch(() => undefined);
  await stopHolders();
  await client?.close();
  await proxy?.stop();
  await registry?.stop();
});

async function daemonOn(env: FerryEnv): Promise<RunningFerryDaemon> {
  const d = await startFerryDaemon(FERRY_BIN, env.configPath, {
    socketPath: join(env.dir, 'run', 'snapshotter.sock'),
    root: join(env.dir, 'state', 'snapshots'),
  });
  daemons.push(d);
  return d;
}

/** Prepares every layer with CRI labels (as containerd's unpacker does), then an active snapshot on top. */
async function prepareImage(
  socketPath: string,
  beforeLayer?: (i: number) => Promise<void>,
): Promise<string[]> {
  const c = await snapshotsClient(socketPath);
  try {
    const image = {
      ref,
      manifestDigest: pushed.manifestDigest,
      layerDigests: pushed.manifest.layers.map((l) => l.digest),
      diffIds: layers.map((l) => diffId(l)),
    };
    const { chainIds, codes } = await prepareWithCriLabels(c, image, beforeLayer);
    expect(codes.every((code) => code === status.ALREADY_EXISTS)).toBe(true);
    const parent = chainIds[chainIds.length - 1]!;
    const r = await c.call<{ mounts: Array<{ type: string; options: string[] }> }>('Prepare', {
      key: 'k8s.io/ctr/rootfs',
      parent,
    });
    expect(r.mounts[0]?.type).toBe('overlay');
    return r.mounts[0]!.options;
  } finally {
    c.close();
  }
}

describe('daemon traces and prefetch hints', () => {
  it('records a trace of daemon-mounted layers, then a Hint on another node prefetches it', async () => {
    // Node A: the start, through the snapshotter's lazy layers.
    const nodeA = ferryEnv(CONFIG);
    const a = await daemonOn(nodeA);
    const options = await prepareImage(a.socketPath);
    const rootfs = mkdtempSync(join(tmpdir(), 'ferry-pfh-rootfs-'));
    await run('mount', ['-t', 'overlay', 'overlay', '-o', options.join(','), rootfs]);
    try {
      await readWorkingSet(rootfs, WORKING_SET);
    } finally {
      await run('umount', [rootfs]);
    }
    expect(await a.stop()).toBe(0);
    expect(a.stderr()).toMatch(/"recording startup and prefetching"/);

    const traceFile = `${digestHex(pushed.manifestDigest)}.json`;
    expect(readdirSync(join(nodeA.dir, 'state', 'traces'))).toContain(traceFile);
    const stored = JSON.parse(readFileSync(join(nodeA.dir, 'state', 'traces', traceFile), 'utf8')) as {
      startups: number;
      entries: Array<{ layerDigest: string }>;
    };
    expect(stored.startups).toBe(1);
    expect(new Set(stored.entries.map((e) => e.layerDigest)).size).toBeGreaterThanOrEqual(2);
    const shown = JSON.parse(await ferryWith(['trace', 'show', ref, '--json'], nodeA)) as {
      chunks: number;
      bytes: number;
      files: Array<{ path: string }>;
    };
    const traced = new Set(shown.files.map((f) => f.path));
    expect(WORKING_SET.filter((p) => !traced.has(p))).toEqual([]);
    expect(shown.files.length).toBeLessThan(SMALL_FILES / 3);
    await ferryWith(['trace', 'push', ref], nodeA);

    // Node B: a scheduler's hint before the pod lands.
    const nodeB = ferryEnv(`${CONFIG}enabled = false\n`);
    const b = await daemonOn(nodeB);
    proxy.resetStats();
    const out = await ferryWith(['prefetch', ref, '--wait', '--json', '--priority', '3'], nodeB);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ event: 'hinted', coalesced: false });
    const final = lines.at(-1)!;
    expect(final).toMatchObject({
      event: 'progress',
      phase: 'DONE',
      trace_origin: 'registry',
      chunks_total: shown.chunks,
      chunks_done: shown.chunks,
      chunks_failed: 0,
      priority: 3,
      manifest_digest: pushed.manifestDigest,
    });
    const phases = lines.map((l) => l['phase']).filter((p) => p !== undefined);
    expect(phases.indexOf('FETCHING')).toBeLessThan(phases.indexOf('DONE'));
    const hintBytes = proxy.stats.blobBytes;
    expect(hintBytes).toBeGreaterThan(0);

    // An unknown image: the hint is accepted, the job fails with NOT_FOUND, and the CLI says so.
    const bad = await run(
      process.execPath,
      [FERRY_BIN, 'prefetch', `${proxy.host}/nope:1`, '--wait', '--json', '--config', nodeB.configPath],
      { maxBuffer: 1 << 20 },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/NOT_FOUND/);
    expect(await b.stop()).toBe(0);

    // Node B's start: every chunk it reads is already in its cache.
    const target = join(nodeB.dir, 'rootfs');
    const m = spawnMount(ref, target, nodeB);
    try {
      await m.waitFor('mounted');
      proxy.resetStats();
      await readWorkingSet(target, WORKING_SET);
      console.info(
        `hint: prefetched ${shown.chunks} chunks (${hintBytes} registry bytes); the start then read ` +
          `${proxy.stats.blobBytes} registry bytes`,
      );
      expect(proxy.stats.blobBytes).toBe(0);
      await ferry(['umount', target], nodeB);
      const exit = await m.exited;
      expect(exit.code, exit.stderr).toBe(0);
    } finally {
      await m.stop();
    }
  });

  // Uses the trace the test above pushed to the registry.
  it("after a finished hint, Prepares take the hint's indexes and trees; the trace is planned layer by layer", async () => {
    const nodeC = ferryEnv(CONFIG);
    const c = await daemonOn(nodeC);
    const out = await ferryWith(['prefetch', ref, '--wait', '--json'], nodeC);
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toMatchObject({ phase: 'DONE' });
    await waitForLog(c, (r) => r['msg'] === 'image ready for Prepare');
    const logged = (msg: string) => daemonLogRecords(c).filter((r) => r['msg'] === msg);
    expect(logged('image ready for Prepare')).toHaveLength(1);

    const digests = pushed.manifest.layers.map((l) => l.digest);
    const options = await prepareImage(c.socketPath, async (i) => {
      // From the second layer on, the image's trace prefetch is planned already (it was not until the last).
      if (i > 0) await waitForLog(c, (r) => r['msg'] === 'prefetch planned');
    });
    expect(options.length).toBeGreaterThan(0);
    const mounts = logged('lazy layer mounted');
    expect(mounts.map((r) => r['layer'])).toEqual(digests);
    // No index resolution, config or tree build on the way: the hint made them (the logs say which index).
    for (const m of mounts) expect(m).toMatchObject({ hinted: true, treeReady: true, index: 'registry' });
    expect(logged('prefetch planned')[0]).toMatchObject({ trace: 'local', layers: 1 });
    await waitForLog(c, () => logged('prefetch planned for a layer').length === digests.length - 1);
    expect(logged('prefetch planned for a layer').map((r) => r['layer'])).toEqual(digests.slice(1));
    expect(await c.stop()).toBe(0);
  });
});

describe('a hinted pull through containerd', () => {
  it('ctr-remote rpull after a finished hint mounts every layer from what the hint resolved', async () => {
    requireBinaries([CTR_REMOTE_BINARY]);
    const nodeD = ferryEnv(CONFIG);
    const d = await daemonOn(nodeD);
    const ctd = await startContainerd({ snapshotterSocket: d.socketPath });
    try {
      const out = await ferryWith(['prefetch', ref, '--wait', '--json'], nodeD);
      expect(JSON.parse(out.trim().split('\n').at(-1)!)).toMatchObject({ phase: 'DONE' });
      // ctr-remote's labels carry no manifest digest: the name is resolved once per Prepare and must match.
      await ctd.ctrRemote(['image', 'rpull', '--plain-http', '--snapshotter', 'ferry', ref], {
        timeoutMs: 120_000,
      });
      const mounts = daemonLogRecords(d).filter((r) => r['msg'] === 'lazy layer mounted');
      expect(mounts.map((r) => r['layer'])).toEqual(pushed.manifest.layers.map((l) => l.digest));
      for (const m of mounts) expect(m).toMatchObject({ hinted: true, treeReady: true });
      await ctd.ctr(['image', 'rm', '--sync', ref], { timeoutMs: 30_000 });
    } finally {
      await ctd.stop();
    }
    expect(await d.stop()).toBe(0);
  });
});

async function waitForLog(
  d: RunningFerryDaemon,
  match: (r: Record<string, unknown>) => boolean,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!daemonLogRecords(d).some(match)) {
    if (Date.now() > deadline) throw new Error(`log line not seen: ${d.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
