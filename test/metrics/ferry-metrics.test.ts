// FerryMetrics + endpoints: sources sampled at scrape, reads and gRPC calls observed on their channels (hung reads
// counted once), /readyz gating, and the status socket (mode 0600) read back through fetchStatus.
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { grpcCall, readEnd, readStart, type LayerReadMessage } from '../../src/metrics/channels.js';
import { FerryMetrics } from '../../src/metrics/ferry-metrics.js';
import type { PrefetchSample } from '../../src/metrics/status-types.js';
import {
  parseListenAddress,
  startMetricsServer,
  startStatusServer,
  type RunningEndpoint,
} from '../../src/metrics/http-endpoints.js';
import { ReadTracker } from '../../src/metrics/read-tracker.js';
import { fetchStatus } from '../../src/metrics/status-client.js';
import { STATUS_VERSION, type DaemonStatus } from '../../src/metrics/status-types.js';

const open: RunningEndpoint[] = [];
const made: FerryMetrics[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
  for (const m of made.splice(0)) m.close();
});

function metrics(o: ConstructorParameters<typeof FerryMetrics>[0]): FerryMetrics {
  const m = new FerryMetrics(o);
  made.push(m);
  return m;
}

/** A demand read as a lazy layer publishes it; call the result to end it. */
function read(layer: string, lengthBytes: number): (error?: unknown, bytes?: number) => void {
  const m: LayerReadMessage = { layer, lengthBytes };
  readStart.publish(m);
  return (error, bytes = error === undefined ? lengthBytes : 0) => {
    if (error !== undefined) m.error = error;
    m.bytes = bytes;
    readEnd.publish(m);
  };
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('FerryMetrics', () => {
  it('samples tiers, cache, layers and prefetch from its sources at each scrape', async () => {
    let registryBytes = 100;
    let jobs: PrefetchSample[] = [
      {
        image: 'x',
        phase: 'running',
        chunksDone: 1,
        chunksTotal: 5,
        bytesDone: 7,
        bytesTotal: 9,
        queueDepth: 4,
      },
    ];
    const m = metrics({
      hungReadMs: 10_000,
      processMetrics: false,
      sources: {
        tiers: () => ({
          memory: { chunks: 1, bytes: 10 },
          disk: { chunks: 2, bytes: 20 },
          peer: { chunks: 0, bytes: 0 },
          registry: { chunks: 3, bytes: registryBytes },
        }),
        cache: () => [{ tier: 'disk', bytes: 5, maxBytes: 50, entries: 1, evictions: 4, hits: 0, misses: 0 }],
        layers: () => [{ digest: 'sha256:aa', chunks: 4, chunksLocal: 1 }],
        prefetch: () => jobs,
      },
    });
    let text = await m.scrape();
    expect(value(text, 'ferry_chunk_bytes_served_total{tier="registry"}')).toBe(100);
    expect(value(text, 'ferry_chunks_served_total{tier="disk"}')).toBe(2);
    expect(value(text, 'ferry_cache_bytes{tier="disk"}')).toBe(5);
    expect(value(text, 'ferry_cache_capacity_bytes{tier="disk"}')).toBe(50);
    expect(value(text, 'ferry_cache_evictions_total{tier="disk"}')).toBe(4);
    expect(value(text, 'ferry_layer_fetched_ratio{layer="sha256:aa"}')).toBe(0.25);
    expect(value(text, 'ferry_layers_mounted')).toBe(1);
    expect(value(text, 'ferry_prefetch_queue_depth_chunks')).toBe(4);
    expect(value(text, 'ferry_prefetch_jobs{phase="running"}')).toBe(1);
    expect(await m.prefetchJobs()).toHaveLength(1);
    registryBytes = 250;
    jobs = [];
    text = await m.scrape();
    expect(value(text, 'ferry_chunk_bytes_served_total{tier="registry"}')).toBe(250);
    expect(value(text, 'ferry_prefetch_queue_depth_chunks')).toBe(0);
  });

  it('caps per-layer series', async () => {
    const m = metrics({
      hungReadMs: 10_000,
      maxLayerSeries: 2,
      processMetrics: false,
      sources: { layers: () => [1, 2, 3].map((i) => ({ digest: `sha256:${i}`, chunks: 2, chunksLocal: 2 })) },
    });
    const text = await m.scrape();
    expect(text.match(/^ferry_layer_fetched_ratio\{/gm)).toHaveLength(2);
    expect(value(text, 'ferry_layer_chunks{state="total"}')).toBe(6);
  });

  it('observes reads and gRPC calls on their channels; counts hung reads once each', async () => {
    const m = metrics({ hungReadMs: 20, processMetrics: true });
    const done = read('sha256:aa', 100);
    done(undefined, 100);
    read('sha256:aa', 10)(new Error('boom'));
    read('sha256:bb', 10); // never ends: hangs
    grpcCall.publish({ method: 'Prepare', code: 'OK', seconds: 0.01 });
    await new Promise((r) => setTimeout(r, 40));
    let text = await m.scrape();
    expect(value(text, 'ferry_read_duration_seconds_count{outcome="ok"}')).toBe(1);
    expect(value(text, 'ferry_read_duration_seconds_count{outcome="error"}')).toBe(1);
    expect(value(text, 'ferry_read_bytes_total')).toBe(100);
    expect(value(text, 'ferry_reads_in_flight')).toBe(1);
    expect(value(text, 'ferry_reads_hung')).toBe(1);
    expect(value(text, 'ferry_reads_hung_total')).toBe(1);
    expect(value(text, 'ferry_grpc_requests_total{method="Prepare",code="OK"}')).toBe(1);
    expect(value(text, 'ferry_process_resident_memory_bytes')).toBeGreaterThan(0);
    text = await m.scrape();
    expect(value(text, 'ferry_reads_hung_total')).toBe(1);
    expect(m.reads.layerStats('sha256:aa')).toMatchObject({ reads: 2, readBytes: 100, readErrors: 1 });
    m.close();
    grpcCall.publish({ method: 'Prepare', code: 'OK', seconds: 0.01 });
    text = await m.scrape();
    expect(value(text, 'ferry_grpc_requests_total{method="Prepare",code="OK"}')).toBe(1);
  });
});

describe('ReadTracker', () => {
  it('bounds the layers it tracks and counts local vs fetched chunks', () => {
    const t = new ReadTracker({ maxLayers: 1 });
    t.chunk('a', true);
    t.chunk('a', false);
    t.chunk('b', false);
    expect(t.layerStats('a')).toMatchObject({ chunksLocal: 1, chunksFetched: 1 });
    expect(t.layerStats('b')).toMatchObject({ chunksLocal: 0, chunksFetched: 0 });
  });
});

describe('endpoints', () => {
  it('parses listen addresses', () => {
    expect(parseListenAddress('127.0.0.1:9650')).toEqual({ host: '127.0.0.1', port: 9650 });
    expect(parseListenAddress('[::1]:1')).toEqual({ host: '::1', port: 1 });
    expect(parseListenAddress(':80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(() => parseListenAddress('nope')).toThrow(/host:port/);
  });

  it('serves /metrics, /healthz, and /readyz only once ready', async () => {
    const m = metrics({ hungReadMs: 10_000, processMetrics: false });
    let ready = false;
    const e = await startMetricsServer({
      address: '127.0.0.1:0',
      metrics: m,
      ready: () => ready,
      log: silentLogger(),
    });
    open.push(e);
    const base = `http://${e.address}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    expect(await res.text()).toMatch(/# TYPE ferry_read_duration_seconds histogram/);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('serves status on a 0600 unix socket and refuses a second live server', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-status-'));
    const socketPath = join(dir, 'run', 'ferry.sock');
    const status = { version: STATUS_VERSION, pid: 42, layers: [] } as unknown as DaemonStatus;
    const e = await startStatusServer({
      socketPath,
      status: () => Promise.resolve(status),
      log: silentLogger(),
    });
    open.push(e);
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(await fetchStatus(socketPath)).toMatchObject({ pid: 42 });
    await expect(
      startStatusServer({ socketPath, status: () => Promise.resolve(status), log: silentLogger() }),
    ).rejects.toThrow(/in use/);
    await expect(fetchStatus(join(dir, 'missing.sock'))).rejects.toThrow(/is `ferry daemon` running/);
  });
});
