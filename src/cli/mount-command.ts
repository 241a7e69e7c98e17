// `ferry mount <ref> <dir>` (foreground until interrupted or `ferry umount`) and `ferry umount <dir>`.
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../errors.js';
import { parseReference } from '../image/reference.js';
import { loadConfig } from '../config/load.js';
import { createLogger, type Logger } from '../log.js';
import { cleanStaleMounts } from '../fuse/stale.js';
import { fuseMountsUnder } from '../os/mountinfo.js';
import { lazyUnmount } from '../os/unmount.js';
import { mountImage } from '../mount/image-mount.js';
import { MountStateDir, processAlive, recordName, type MountRecord } from '../mount/mount-state.js';
import { isMountPoint } from '../os/mountinfo.js';
import { unmount } from '../os/unmount.js';
import { describeRoot } from '../index/trust.js';
import { createContext } from '../node/context.js';
import { ImagePrefetch } from '../prefetch/image-prefetch.js';
import { TraceStore } from '../prefetch/trace-store.js';
import { formatBytes, shortDigest } from './format.js';

export interface MountCommandOptions {
  json?: boolean;
  config?: string;
  /** Mount with suid,dev (default nosuid,nodev: the image's setuid bits and device nodes grant nothing). */
  allowSuidDev?: boolean;
}

const cliLogLevel = (): string => process.env['FERRY_LOG_LEVEL'] ?? 'warn';

/** Tears down what a dead `ferry mount` left: the overlay, its layer mounts, its scratch dir, its record. */
async function reap(record: MountRecord, states: MountStateDir, log: Logger): Promise<void> {
  await unmount(record.target, { lazy: true }).catch((e: unknown) =>
    log.warn({ err: e }, 'overlay unmount failed'),
  );
  for (const m of await fuseMountsUnder(record.workDir))
    await lazyUnmount(m.mountpoint).catch(() => undefined);
  await rm(record.workDir, { recursive: true, force: true }).catch(() => undefined);
  await states.remove(record.target);
  log.info({ target: record.target }, 'cleaned up after a dead ferry mount');
}

async function reapDead(scratchDir: string, states: MountStateDir, log: Logger): Promise<void> {
  for (const r of await states.all()) if (!processAlive(r.pid)) await reap(r, states, log);
  await cleanStaleMounts({ dir: scratchDir, log });
}

export async function runMount(refText: string, dirArg: string, opts: MountCommandOptions): Promise<void> {
  const ref = parseReference(refText);
  const target = resolve(dirArg);
  // Where the time to ready goes (the `mounted` event's stagesMs): each stage ends when the next starts.
  const stages: Record<string, number> = { start: Math.round(performance.now()) };
  let lap = performance.now();
  const stage = (name: string): void => {
    const now = performance.now();
    stages[name] = Math.round(now - lap);
    lap = now;
  };
  const ctx = await createContext({ configPath: opts.config, logLevel: cliLogLevel() });
  const { config, log } = ctx;
  const states = new MountStateDir(config.paths.mountStateDir);
  const out = (line: object | string) =>
    process.stdout.write(
      typeof line === 'string'
        ? opts.json === true
          ? ''
          : `${line}\n`
        : opts.json === true
          ? `${JSON.stringify(line)}\n`
          : '',
    );
  try {
    await reapDead(config.paths.mountScratchDir, states, log);
    const existing = await states.read(target);
    if (existing !== undefined)
      throw new FerryError('ALREADY_EXISTS', `${target} is already mounted by pid ${existing.pid}`);
    if (await isMountPoint(target))
      throw new FerryError('ALREADY_EXISTS', `${target} is already a mount point`);
    stage('context');

    const t0 = performance.now();
    const chunks = await ctx.chunkService(); // peers first (when `[p2p] enabled`), registry after
    stage('chunkService');
    const image = await ctx.registry.resolve(ref);
    stage('manifest');
    const provided = await ctx.provider.forImage(image);
    stage('indexes');
    const indexes = provided.map((p) => p.index);
    chunks.register(image.ref, indexes);
    const unshare = chunks.share(indexes);
    // Record this start's reads, replay a trace (local or from the registry).
    const prefetch = new ImagePrefetch({
      image,
      indexes,
      source: chunks.source,
      cached: ctx.chunks,
      traces: new TraceStore({
        dir: config.paths.tracesDir,
        merge: { maxEntries: config.prefetch.maxTraceChunks },
        log,
      }),
      registry: ctx.registry,
      settings: config.prefetch,
      log,
    });
    const prefetching = prefetch.start(); // starts while the layers mount
    const scratch = config.paths.mountScratchDir;
    await mkdir(scratch, { recursive: true, mode: 0o700 });
    await chmod(scratch, 0o700); // layer mount points below: no other user walks into an image's tree
    const workDir = join(scratch, recordName(target).replace(/\.json$/, ''));
    let mounted: Awaited<ReturnType<typeof mountImage>>;
    try {
      mounted = await mountImage({
        target,
        workDir,
        indexes,
        source: chunks.source,
        log,
        timings: config.fuseTimings,
        engine: config.fuse.engine,
        onChunkRead: prefetch.onChunkRead,
        readAhead: config.readAhead,
        suidDev: opts.allowSuidDev === true,
      });
    } catch (e) {
      await prefetch.stop();
      await prefetching;
      throw e;
    }
    stage('mount');
    await states.write({
      target,
      pid: process.pid,
      ref: ref.toString(),
      manifestDigest: image.manifestDigest,
      layerMounts: mounted.layers.map((l) => l.mountpoint),
      workDir,
      createdAt: new Date().toISOString(),
    });
    const mountMs = Math.round(performance.now() - t0);
    const cpu = process.cpuUsage(); // since the process started: module loading included
    stage('record');
    const layers = provided.map((p, i) => ({
      digest: p.index.layerDigest,
      format: p.index.format,
      indexSource: p.origin,
      indexKey: p.key,
      trust: describeRoot(p.root),
      files: p.index.entries.filter((e) => e.type === 'file').length,
      compressedSize: p.index.compressedSize,
      indexMs: p.durationMs,
      mountpoint: mounted.layers[i]?.mountpoint,
    }));
    out({
      event: 'mounted',
      target,
      ref: ref.toString(),
      manifestDigest: image.manifestDigest,
      mountMs,
      stagesMs: stages,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      layers,
    });
    out(`mounted ${ref.toString()} at ${target} in ${mountMs} ms (${layers.length} layers)`);
    for (const l of layers) {
      out(
        `  ${shortDigest(l.digest)}  ${l.format.padEnd(7)}  index: ${l.indexSource.padEnd(8)}  ${formatBytes(l.compressedSize)}  trust: ${l.trust}`,
      );
    }
    out('serving on demand; Ctrl-C or `ferry umount` to stop');
    // Report when the prefetch is done; stop it and save the trace at unmount.
    const prefetched = prefetching.then((r) => {
      out({ event: 'prefetched', target, ...r });
      out(
        `prefetch ${r.phase} (trace: ${r.traceOrigin}): ${r.stats.fetched}/${r.stats.planned} chunks ` +
          `(${formatBytes(r.stats.fetchedBytes)}) fetched, ${r.stats.alreadyCached} already cached`,
      );
    });

    await waitForStop(target);
    // Fetches in flight end now: one stuck on a stalled registry would hold the unmount for its whole timeout.
    await ctx.registry.close();
    await prefetch.stop();
    await prefetched;
    await mounted.unmount();
    await states.remove(target);
    unshare();
    const p2pStats = (await ctx.p2p())?.stats();
    const s = chunks.stats();
    const prefetchStats = prefetch.stats();
    out({
      event: 'unmounted',
      target,
      served: s,
      cache: ctx.chunks.stats(),
      prefetch: prefetchStats,
      ...(p2pStats !== undefined ? { p2p: p2pStats } : {}),
    });
    out(
      `unmounted ${target}: served ${s.memory.chunks} chunks from memory, ${s.disk.chunks} from disk, ` +
        `${s.origin.chunks} (${formatBytes(s.origin.bytes)}) from the registry`,
    );
    out(`prefetch hits: ${prefetchStats.hits} of ${prefetchStats.demandChunks} chunks read`);
  } finally {
    await ctx.close();
  }
}

/** Resolves on SIGINT/SIGTERM, or when someone else unmounted the overlay (`ferry umount`, `umount`). */
async function waitForStop(target: string): Promise<void> {
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!ac.signal.aborted) {
      await sleep(500, undefined, { signal: ac.signal }).catch(() => undefined);
      if (!ac.signal.aborted && !(await isMountPoint(target))) return;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function runUmount(dirArg: string, opts: { config?: string } = {}): Promise<void> {
  const target = resolve(dirArg);
  const config = await loadConfig(opts.config);
  const log = createLogger({ level: cliLogLevel() });
  const states = new MountStateDir(config.paths.mountStateDir);
  const record = await states.read(target);
  if (record === undefined) {
    if (await isMountPoint(target)) {
      await unmount(target);
      return;
    }
    throw new FerryError('NOT_FOUND', `${target} is not mounted by ferry`);
  }
  if (processAlive(record.pid)) {
    process.kill(record.pid, 'SIGTERM');
    const deadline = Date.now() + config.daemon.shutdownTimeoutMs;
    while (processAlive(record.pid) && Date.now() < deadline) await sleep(100);
    if (!processAlive(record.pid)) return;
    log.warn({ pid: record.pid }, 'ferry mount did not stop in time; detaching its mounts');
  }
  await reap(record, states, log);
}
