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

// The daemon's V8 young generation. This V8 lets each semi-space grow to 64 MiB on a big machine: ~60 MiB more
// resident heap than a daemon whose live heap is ~40 MiB needs (bench/daemon-rss.ts: 111 -> 50 MiB of heap pages
// with 3 images mounted). Its allocations are short-lived request objects (chunk bytes live outside the heap), so
// 2 MiB semi-spaces only mean more, cheap scavenges, which also free dead chunk Buffers sooner. Heap sizes are
// fixed when the isolate is made, before this file runs, so the daemon re-executes itself with the flag (the same
// pid: socket activation and systemd's notify still hold). A flag already given (node option or NODE_OPTIONS) wins.
const SEMI_SPACE = '--max-semi-space-size';
if (
  sub === 'daemon' &&
  typeof process.execve === 'function' &&
  ![...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) =>
    a.startsWith(SEMI_SPACE),
  )
) {
  try {
    process.execve(process.execPath, [
      process.execPath,
      ...process.execArgv,
      `${SEMI_SPACE}=2`,
      ...process.argv.slice(1),
    ]);
  } catch (e) {
    process.stderr.write(`ferry: running with V8's default young generation (re-exec failed: ${e})\n`);
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
