// Peers are untrusted, over real loopback between two `ferry daemon` nodes and hand-written peers that hold the
// cluster secret: a request MAC captured on its way to one node is refused by another; a peer that relays the
// right bytes under a forged response MAC is refused and penalised; a peer that never answers, and one that
// accepts (authentic headers) and never sends the body, are penalised; node B still reads every file, the
// same bytes as node A, the stalled chunks from the registry.
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { connect } from 'node:http2';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/metrics/status-types.js';
import { PeerAuth } from '../../src/p2p/auth.js';
import { RegistryClient } from '../../src/registry/client.js';
import {
  BUSYBOX,
  fuseMountsBelow,
  pushBusyboxApp,
  requireBinaries,
  stopHolders,
  type BusyboxApp,
} from '../helpers/containerd.js';
import { startFakePeer, type FakePeer } from '../helpers/fake-peer.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';
import { prepareWithCriLabels } from '../helpers/cri-prepare.js';
import { diffId } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient, freePort } from '../helpers/registry.js';
import { startSnapshotsNode, type SnapshotsNode } from '../helpers/snapshots-node.js';

const run = promisify(execFile);
// A fresh random secret per run: the config refuses short or placeholder-looking ones.
const SECRET = randomBytes(32).toString('base64');

interface Node extends SnapshotsNode {
  id: string;
}

let registry: TestRegistry;
let client: RegistryClient;
let app: BusyboxApp;
const nodes: Node[] = [];
const fakes: FakePeer[] = [];
let staller: FakePeer;
let liar: FakePeer;
let recorder: FakePeer;
let mute: FakePeer;

/** One GET over h2c with the given auth header: the status and body. */
async function h2get(peer: string, path: string, auth: string): Promise<{ status: number; body: Buffer }> {
  const session = connect(`http://${peer}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':path': path, 'x-ferry-auth': auth });
      const parts: Buffer[] = [];
      let code = 0;
      req.on('response', (h) => (code = Number(h[':status'])));
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => resolve({ status: code, body: Buffer.concat(parts) }));
      req.on('error', reject);
      req.end();
    });
  } finally {
    session.destroy();
  }
}

async function nodeStatus(n: Node): Promise<DaemonStatus> {
  const { stdout } = await run(process.execPath, [
    FERRY_BIN,
    'status',
    '--json',
    '--config',
    n.env.configPath,
  ]);
  return JSON.parse(stdout) as DaemonStatus;
}

async function peerStates(n: Node): Promise<Record<string, string>> {
  return Object.fromEntries(((await nodeStatus(n)).peers ?? []).map((p) => [p.peer, p.state]));
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function mountLayers(n: Node, ref: string): Promise<string[]> {
  const { codes } = await prepareWithCriLabels(n.client, {
    ref,
    manifestDigest: app.pushed.manifestDigest,
    layerDigests: app.pushed.manifest.layers.map((l) => l.digest),
    diffIds: app.layers.map(diffId),
  });
  expect(codes).toEqual([status.ALREADY_EXISTS, status.ALREADY_EXISTS]);
  return fuseMountsBelow(n.root);
}

async function readAll(mounts: string[]): Promise<string> {
  const script = 'for m in "$@"; do (cd "$m" && find . -type f -exec sha256sum {} +); done | sort';
  const { stdout } = await run('sh', ['-c', script, 'sh', ...mounts], { maxBuffer: 16 << 20 });
  return stdout;
}

beforeAll(async () => {
  requireBinaries([BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  client = testRegistryClient();
  app = await pushBusyboxApp(client, `${registry.host}/p2p-trust:1`, 'trust me\n', 8 << 20);
  // Small chunks (~72): each of node B's fake peers owns some of them (one owns none with p ≈ (5/6)^72 ≈ 2e-6).
  await ferry(
    ['index', `${registry.host}/p2p-trust:1`, '--push'],
    ferryEnv('[index]\nchunkSizeBytes = 131072\n'),
  );
  const ports = [await freePort(), await freePort()];
  const [idA, idB] = ports.map((p) => `127.0.0.1:${p}`) as [string, string];

  // Never answers a chunk request (the stream stays open, no headers).
  staller = await startFakePeer(SECRET, () => undefined);
  // Relays the real bytes from node A, under MACs made with another secret.
  const forger = new PeerAuth({ secret: Buffer.from('not-the-cluster-secret-at-all') });
  const relayAuth = new PeerAuth({ secret: Buffer.from(SECRET) });
  liar = await startFakePeer(SECRET, (stream, path) => {
    void h2get(idA, path, relayAuth.signRequest(idA, 'GET', path).header).then(({ status: code, body }) => {
      const nonce = 'ab'.repeat(12);
      stream.respond(
        {
          ':status': code,
          'x-ferry-auth': forger.signResponse({ server: liar.id, nonce, status: code, pending: false }),
        },
        { waitForTrailers: true },
      );
      stream.on('wantTrailers', () =>
        stream.sendTrailers({
          'x-ferry-auth': forger.signBody({ server: liar.id, nonce, chunkDigest: 'x', length: body.length }),
        }),
      );
      stream.end(body);
    });
  });
  // Records the requests it gets; answers chunk requests with nothing useful (closes the stream).
  recorder = await startFakePeer(SECRET, (stream) => stream.close());
  // Accepts (authentic "pending" headers, as an owner fetching for us) and then never sends the body.
  const muteAuth = new PeerAuth({ secret: Buffer.from(SECRET) });
  mute = await startFakePeer(SECRET, (stream, _path, { nonce, self }) =>
    stream.respond({
      ':status': 200,
      'x-ferry-pending': '1',
      'x-ferry-auth': muteAuth.signResponse({ server: self, nonce, status: 200, pending: true }),
    }),
  );
  fakes.push(staller, liar, recorder, mute);

  const peerLists = [
    [idA, idB],
    [idA, idB, staller.id, liar.id, recorder.id, mute.id],
  ];
  for (const [i, port] of ports.entries()) {
    const peers = peerLists[i]!.map((p) => `"${p}"`).join(', ');
    const env = ferryEnv(
      `[prefetch]\ndefaultBytesPerLayer = 0\n\n[metrics]\nenabled = false\n\n` +
        `[p2p]\nenabled = true\nlisten = "127.0.0.1:${port}"\nadvertise = "127.0.0.1:${port}"\n` +
        `peers = [${peers}]\nsecret = "${SECRET}"\nownerCount = 1\npeerTimeoutMs = 5000\n`,
    );
    nodes.push({ ...(await startSnapshotsNode(env)), id: `127.0.0.1:${port}` });
  }
}, 180_000);

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await stopHolders();
  for (const f of fakes) await f.close();
  await client?.close();
  await registry?.stop();
});

describe('untrusted peers', () => {
  it('a request MAC captured on its way to one node is refused by another', async () => {
    const [a, b] = nodes as [Node, Node];
    // Node B probes the recorder: those are real requests, MAC'd by B for the recorder.
    await waitFor(() => Promise.resolve(recorder.captured.some((c) => c.path === '/healthz')));
    const captured = recorder.captured.find((c) => c.path === '/healthz')!;
    expect((await h2get(a.id, '/healthz', captured.auth)).status).toBe(401);
    // Made for node A, it is accepted by node A (once): the refusal above is the binding, not a bad header.
    const fresh = new PeerAuth({ secret: Buffer.from(SECRET) }).signRequest(a.id, 'GET', '/healthz').header;
    expect((await h2get(a.id, '/healthz', fresh)).status).toBe(200);
    expect((await h2get(a.id, '/healthz', fresh)).status).toBe(401); // and its replay at A is refused
    expect((await h2get(b.id, '/healthz', fresh)).status).toBe(401);
  });

  it('refuses a forged response, penalises a stalling peer, and still reads everything', async () => {
    const [a, b] = nodes as [Node, Node];
    const ref = `${registry.host}/p2p-trust:1`;
    const first = await readAll(await mountLayers(a, ref));
    expect(first).toContain('./hello.txt');

    await waitFor(async () => {
      const s = await peerStates(b);
      return [a.id, staller.id, liar.id, recorder.id, mute.id].every((p) => s[p] === 'up');
    });
    const t0 = performance.now();
    const second = await readAll(await mountLayers(b, ref));
    const readMs = performance.now() - t0;
    expect(second).toBe(first);
    expect(staller.chunkRequests).toBeGreaterThan(0);
    expect(liar.chunkRequests).toBeGreaterThan(0);
    expect(mute.chunkRequests).toBeGreaterThan(0);
    // The silent peer is penalised at its stall deadline (1 s), the mute one at peerTimeoutMs (5 s: long enough
    // that honest node A, answering on a loaded 2-core machine, is never taken for a mute one), the forger at its
    // first answer.
    await waitFor(async () => {
      const s = await peerStates(b);
      return [staller.id, liar.id, mute.id].every((p) => s[p] === 'penalised');
    }, 15_000);
    const s = await peerStates(b);
    expect(s[a.id]).toBe('up');
    expect(s[recorder.id]).toBe('up');
    console.log(
      `p2p trust: node B read the image in ${Math.round(readMs)} ms; staller got ${staller.chunkRequests} ` +
        `requests, forger ${liar.chunkRequests}, mute ${mute.chunkRequests}`,
    );
  });
});
