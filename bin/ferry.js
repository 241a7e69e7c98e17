#!/usr/bin/env node
// The `ferry` binary: runs the compiled CLI (npm run build puts it in dist/). CommonJS on purpose (bin/package.json):
// libuv sizes its thread pool once, from UV_THREADPOOL_SIZE, at first use, and Node's ESM loader uses the pool
// before an ESM entry's first line runs; here the variable is set in time. Processes that serve FUSE park one
// pool thread per mount in a blocking /dev/fuse read, so they need more threads than the default 4.
'use strict';

// Node 24 is the supported runtime (Node 20 no longer gets security fixes). A checkout set up by scripts/setup.sh
// has it at .node/bin/node; say where rather than fail later on a missing API.
if (Number(process.versions.node.split('.')[0]) < 24) {
  process.stderr.write(
    `ferry: needs Node.js 24 or later, this is ${process.version}` +
      ` (scripts/setup.sh installs it into the checkout: put its .node/bin first on PATH)\n`,
  );
  process.exit(1);
}

// Everything Ferry creates is its user's alone unless a mode says otherwise (state, cache, indexes, traces: the
// contents of images that may be private), whichever module creates it. Set before any module loads.
process.umask(0o077);

// Chunk bytes live in ArrayBuffers outside the JS heap (~3 MiB of them per 1 MiB chunk fetched: socket reads, the
// range body, the decoded chunk). By default V8 starts a full mark-compact of the whole heap every few tens of MB
// of them — ~120 a GiB, a third of a cold sequential read's CPU (bench/profile-read.ts) — though scavenges free
// them, as they die young. Counted in the heap's global limit instead, they are freed by scavenges. Set before any
// worker starts (flags are process-wide); FERRY_V8_GC_DEFAULTS=1 keeps V8's default, for comparison.
if (process.env.FERRY_V8_GC_DEFAULTS !== '1') {
  require('node:v8').setFlagsFromString('--external-memory-accounted-in-global-limit');
}

const sub = process.argv[2];
if (process.env.UV_THREADPOOL_SIZE === undefined) {
  if (sub === 'fuse-holder') {
    // --max-mounts is read here for that reason; dist/fuse/holder/main.js parses it properly.
    const i = process.argv.findIndex((a) => a === '--max-mounts' || a.startsWith('--max-mounts='));
    const raw =
      i < 0 ? undefined : process.argv[i].includes('=') ? process.argv[i].split('=')[1] : process.argv[i + 1];
    const maxMounts = raw === undefined || !/^\d+$/.test(raw) ? 512 : Number(raw);
    process.env.UV_THREADPOOL_SIZE = String(Math.min(1024, maxMounts + 8));
  } else if (sub === 'mount') {
    // One thread per layer (an image has at most a few hundred) plus the usual 4 for disk and crypto work.
    process.env.UV_THREADPOOL_SIZE = '260';
  }
}

// The daemon's memory settings, fixed before any of its code runs, so the daemon re-executes itself with them (the
// same pid, for systemd's notify); a setting already given wins (bench/daemon-rss.ts,
// 10 images mounted: 422 MiB before, 285 MiB with the semi-space flag, 252 MiB with the malloc threshold too; 3 images
// 236 -> 174 MiB with one malloc arena).
// - V8's young generation: this V8 lets each semi-space grow to 64 MiB on a big machine, ~60 MiB more resident
//   heap than a daemon whose live heap is 40-60 MiB needs. Its allocations are short-lived request objects (chunk
//   bytes live outside the heap), so 2 MiB semi-spaces mean more, cheap scavenges, which also free dead chunk
//   Buffers sooner.
// - glibc's mmap threshold: chunk buffers (1 MiB) freed out of order left the malloc arena of the thread that made
//   them (the decode worker's) at its high-water mark, ~90 MiB; mapped on their own, they go back when freed. The
//   threshold stays above a 128 KiB FUSE read's part, which comes and goes from the arena as before.
// - One malloc arena: glibc gives each thread that allocates (decode worker, libuv pool, V8's helpers) an arena of
//   its own, up to 8 per core, each keeping its high-water mark; the daemon's hot allocations are large buffers
//   (mapped, above) or small ones served by each thread's tcache without the arena lock.
const SEMI_SPACE = '--max-semi-space-size';
const MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: String(256 * 1024), MALLOC_ARENA_MAX: '1' };
// Not when socket-activated: process.execve closes every descriptor above stdio, the inherited socket too;
// ferry.service sets them itself.
if (sub === 'daemon' && typeof process.execve === 'function' && process.env.LISTEN_FDS === undefined) {
  const flagGiven = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) =>
    a.startsWith(SEMI_SPACE),
  );
  if (!flagGiven || Object.keys(MALLOC_ENV).some((k) => process.env[k] === undefined)) {
    try {
      process.execve(
        process.execPath,
        [
          process.execPath,
          ...process.execArgv,
          ...(flagGiven ? [] : [`${SEMI_SPACE}=2`]),
          ...process.argv.slice(1),
        ],
        { ...MALLOC_ENV, ...process.env },
      );
    } catch (e) {
      process.stderr.write(`ferry: running with default V8 and malloc settings (re-exec failed: ${e})\n`);
    }
  }
}

// `ferry fuse-holder` skips the CLI and the daemon's modules entirely: the holder must start fast and stay small.
const entry = sub === 'fuse-holder' ? '../dist/fuse/holder/main.js' : '../dist/main.js';
// A socket-activated daemon accepts (and answers containerd's handshake) before loading the CLI: containerd gives
// a connection about a second, and loading takes most of one (docs/restart.md).
const early =
  sub === 'daemon' && process.env.LISTEN_PID === String(process.pid)
    ? import('../dist/api/inherited-socket.js').then((m) => m.activatedSocket())
    : Promise.resolve();
early
  .then(() => import(entry))
  .then((m) => (typeof m.main === 'function' ? m.main(process.argv) : undefined))
  .catch((e) => {
    process.stderr.write(`ferry: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
