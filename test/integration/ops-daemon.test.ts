// The operator surface of a running `ferry daemon` against a registry that demands Bearer tokens: layers mounted
// through the CRI-label Prepare flow, a file read through FUSE, then /metrics, `ferry status --json` and the table
// must account for exactly that read; tokens are renewed when they expire; and no password, Basic header or
// token appears in any log line, metric, status output or error message.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonStatus } from '../../src/metrics/status-types.js';
import { RegistryClient } from '../../src/registry/client.js';
import type { SnapshotsClient } from '../api/grpc-client.js';
import {
  pushBusyboxApp,
  requireBinaries,
  stopHolders,
  BUSYBOX,
  type BusyboxApp,
  type RunningFerryDaemon,
} from '../helpers/containerd.js';
import { FERRY_BIN, ferry, ferryEnv, requireBuild } from '../helpers/ferry-cli.js';
import { prepareWithCriLabels } from '../helpers/cri-prepare.js';
import { diffId } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient, freePort } from '../helpers/registry.js';
import { startSnapshotsNode, type SnapshotsNode } from '../helpers/snapshots-node.js';
import { until } from '../helpers/wait.js';

const run = promisify(execFile);
const USER = `ops-${randomBytes(4).toString('hex')}`;
const PASS = `pw-${randomBytes(12).toString('hex')}`;
const WRONG = `wrong-${randomBytes(12).toString('hex')}`;
const GREETING = 'hello, operator\n';
const TOKEN_LIFETIME_S = 2;

/** A token-auth front for the registry (Docker token flow): /token checks the password, the rest wants a live token. */
class TokenAuthProxy {
  readonly tokens: string[] = [];
  private readonly live = new Map<string, number>();
  private server: Server | undefined;
  host = '';

  constructor(private readonly upstream: string) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', `http://${this.host}`);
      if (url.pathname === '/token') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const form = new URLSearchParams(Buffer.concat(chunks).toString());
          const basic = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;
          const ok =
            (form.get('username') === USER && form.get('password') === PASS) ||
            req.headers.authorization === basic;
          if (!ok) return res.writeHead(401).end();
          const token = randomBytes(24).toString('hex');
          this.tokens.push(token);
          this.live.set(token, Date.now() + TOKEN_LIFETIME_S * 1000);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ token, expires_in: TOKEN_LIFETIME_S }));
        });
        return;
      }
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (bearer === undefined || (this.live.get(bearer) ?? 0) < Date.now()) {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${this.host}/token",service="ops",scope="repository:ops:pull"`,
        });
        return res.end();
      }
      const headers = { ...req.headers, host: this.upstream };
      delete headers.authorization;
      const up = request(
        {
          host: this.upstream.split(':')[0],
          port: Number(this.upstream.split(':')[1]),
          method: req.method,
          path: req.url,
          headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const a = this.server.address() as { port: number };
    this.host = `127.0.0.1:${a.port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => {
      this.server?.close(() => r());
      this.server?.closeAllConnections();
    });
  }
}

function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) throw new Error(`no series ${series} in:\n${text.slice(0, 3000)}`);
  return Number(line.slice(series.length + 1));
}

let registry: TestRegistry;
let proxy: TokenAuthProxy;
let client: RegistryClient;
let app: BusyboxApp;
let node: SnapshotsNode;
let daemon: RunningFerryDaemon;
let c: SnapshotsClient;
let configPath: string;
let metricsAddress: string;
const outputs: string[] = [];

beforeAll(async () => {
  requireBinaries([BUSYBOX]);
  requireBuild();
  registry = await startRegistry();
  proxy = await new TokenAuthProxy(registry.host).start();
  client = testRegistryClient();
  app = await pushBusyboxApp(client, `${registry.host}/ops:1`, GREETING, 4 << 20);
  await ferry(['index', `${registry.host}/ops:1`, '--push'], ferryEnv());
  metricsAddress = `127.0.0.1:${await freePort()}`;
  const env = ferryEnv(
    [
      '[prefetch]\nenabled = false',
      '[readAhead]\nenabled = false',
      `[metrics]\naddress = "${metricsAddress}"\nhungReadMs = 5000`,
      `[[registry.credentials]]\nhost = "${proxy.host}"\nusername = "${USER}"\npassword = "${PASS}"`,
    ].join('\n\n'),
  );
  // Debug level: the most the daemon would ever log about requests and credentials.
  configPath = env.configPath.replace(/config\.toml$/, 'config-debug.toml');
  const { readFileSync, writeFileSync } = await import('node:fs');
  writeFileSync(
    configPath,
    readFileSync(env.configPath, 'utf8').replace('[daemon]\n', '[daemon]\nlogLevel = "debug"\n'),
  );
  node = await startSnapshotsNode(env, { configPath });
  ({ daemon, client: c } = node);
}, 180_000);

afterAll(async () => {
  await node?.stop();
  await stopHolders();
  await proxy?.stop();
  await client?.close();
  await registry?.stop();
});

async function status(): Promise<DaemonStatus> {
  const { stdout } = await run(process.execPath, [FERRY_BIN, 'status', '--json', '--config', configPath]);
  outputs.push(stdout);
  return JSON.parse(stdout) as DaemonStatus;
}

async function scrape(): Promise<string> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  outputs.push(text);
  return text;
}

describe('operating a daemon with an authenticated registry', () => {
  it('accounts for a FUSE read in /metrics and ferry status', async () => {
    const digests = app.pushed.manifest.layers.map((l) => l.digest);
    const { codes } = await prepareWithCriLabels(c, {
      ref: `${proxy.host}/ops:1`,
      manifestDigest: app.pushed.manifestDigest,
      layerDigests: digests,
      diffIds: app.layers.map(diffId),
    });
    expect(codes).toEqual([6, 6]); // ALREADY_EXISTS: each layer was mounted lazily
    // Ready once the snapshots socket is old enough for a containerd started before it to have redialled.
    await until(
      '/readyz 200',
      async () => (await fetch(`http://${metricsAddress}/readyz`)).status === 200,
      10_000,
      100,
    );
    const before = await status();
    expect(before.layers.map((l) => l.digest).sort()).toEqual([...digests].sort());
    expect(before.images.map((i) => i.ref)).toEqual([`${proxy.host}/ops:1`]);
    expect(before.images[0]!.layers).toHaveLength(2);
    const top = before.layers.find((l) => l.digest === digests[1])!;
    expect(top.format).toBeTruthy();

    const { stdout } = await run('cat', [join(top.mountpoint, 'hello.txt')]);
    expect(stdout).toBe(GREETING);

    const text = await scrape();
    expect(metric(text, 'ferry_read_bytes_total')).toBe(GREETING.length);
    expect(metric(text, 'ferry_read_duration_seconds_count{outcome="ok"}')).toBeGreaterThanOrEqual(1);
    const registryChunks = metric(text, 'ferry_chunks_served_total{tier="registry"}');
    const registryBytes = metric(text, 'ferry_chunk_bytes_served_total{tier="registry"}');
    expect(registryChunks).toBe(1); // the one chunk holding hello.txt; nothing else was read or prefetched
    expect(registryBytes).toBeGreaterThanOrEqual(GREETING.length);
    expect(metric(text, 'ferry_layers_mounted')).toBe(2);
    expect(metric(text, `ferry_layer_fetched_ratio{layer="${digests[1]!}"}`)).toBeGreaterThan(0);
    expect(metric(text, 'ferry_grpc_requests_total{method="Prepare",code="ALREADY_EXISTS"}')).toBe(2);
    expect(metric(text, 'ferry_reads_hung')).toBe(0);
    expect(metric(text, 'ferry_process_resident_memory_bytes')).toBeGreaterThan(0);

    const after = await status();
    expect(after.tiers.registry).toEqual({ chunks: registryChunks, bytes: registryBytes });
    const topAfter = after.layers.find((l) => l.digest === digests[1])!;
    expect(topAfter).toMatchObject({ readBytes: GREETING.length, servedFetchedChunks: 1, readErrors: 0 });
    expect(topAfter.reads).toBeGreaterThanOrEqual(1);
    expect(topAfter.fetchedPercent).toBeGreaterThan(0);
    const table = await run(process.execPath, [FERRY_BIN, 'status', '--config', configPath]);
    outputs.push(table.stdout);
    expect(table.stdout).toMatch(/^registry\s+1\s/m);
    expect(table.stdout).toMatch(/layers: 2/);
    expect(after.holder?.pid).toBe(daemon.holderPid);
    expect(table.stdout).toContain(`FUSE holder pid ${daemon.holderPid}`);
  });

  it('renews the registry token after it expires', async () => {
    const issued = proxy.tokens.length;
    expect(issued).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, TOKEN_LIFETIME_S * 1000 + 500));
    const top = (await status()).layers.find((l) => l.digest === app.pushed.manifest.layers[1]!.digest)!;
    const { stdout } = await run('sh', [
      '-c',
      `head -c 65536 "${join(top.mountpoint, 'data/big.bin')}" | wc -c`,
    ]);
    expect(stdout.trim()).toBe('65536');
    expect(proxy.tokens.length).toBeGreaterThan(issued);
  });

  it('keeps credentials out of errors: wrong password', async () => {
    const env = ferryEnv(
      `[[registry.credentials]]\nhost = "${proxy.host}"\nusername = "${USER}"\npassword = "${WRONG}"`,
    );
    const r = await run(process.execPath, [
      FERRY_BIN,
      'index',
      `${proxy.host}/ops:1`,
      '--config',
      env.configPath,
    ]).then(
      () => undefined,
      (e: unknown) => e as { stderr: string; stdout: string },
    );
    expect(r).toBeDefined();
    outputs.push(r!.stderr, r!.stdout);
    expect(r!.stderr).toMatch(/UNAUTHENTICATED/);
    expect(`${r!.stderr}${r!.stdout}`).not.toContain(WRONG);
  });

  it('toggles the log level on SIGUSR2 (configured debug ↔ info)', async () => {
    const toggles = (): string[] =>
      [...daemon.stderr().matchAll(/"logLevel":"(\w+)","msg":"log level toggled by SIGUSR2"/g)].map(
        (m) => m[1]!,
      );
    const toggled = async (): Promise<string[]> => {
      const before = toggles().length;
      process.kill(daemon.pid, 'SIGUSR2');
      await until('the SIGUSR2 log line', () => toggles().length > before, 10_000);
      return toggles();
    };
    expect(await toggled()).toEqual(['info']);
    const lines = daemon.stderr().split('\n').length;
    await status(); // would log debug lines ("rpc ok"…) at debug; at info nothing per request
    expect(daemon.stderr().split('\n').length).toBe(lines);
    expect(await toggled()).toEqual(['info', 'debug']);
  });

  it('never writes a password, Basic header or token to logs, metrics or status', async () => {
    await scrape();
    await status();
    const everything = [daemon.stderr(), ...outputs].join('\n');
    expect(everything).toMatch(/ferry daemon ready/);
    const secrets = [
      PASS,
      WRONG,
      Buffer.from(`${USER}:${PASS}`).toString('base64'),
      Buffer.from(`${USER}:${WRONG}`).toString('base64'),
      ...proxy.tokens,
    ];
    expect(proxy.tokens.length).toBeGreaterThanOrEqual(2);
    for (const s of secrets) expect(everything.includes(s), `secret ${s.slice(0, 6)}… leaked`).toBe(false);
  });
});
