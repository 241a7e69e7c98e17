#!/usr/bin/env node
// The `ferry` binary: runs the compiled CLI (npm run build puts it in dist/). `ferry fuse-holder` skips the CLI
// and the daemon's modules entirely: the holder must start fast and stay small.
import { spawn } from 'node:child_process';

if (process.argv[2] === 'fuse-holder') {
  // Each held mount parks one libuv pool thread in a blocking /dev/fuse read. libuv sizes its pool once, from
  // UV_THREADPOOL_SIZE, and Node's ESM loader has already started it (4 threads) by the time this file runs, so
  // setting the variable here would be too late: without it in the environment, run the holder again with it.
  // Service units and ensureHolder() set it, so this extra process is only for hand-started holders.
  if (process.env.UV_THREADPOOL_SIZE === undefined) {
    const i = process.argv.findIndex((a) => a === '--max-mounts' || a.startsWith('--max-mounts='));
    const raw =
      i < 0 ? undefined : process.argv[i].includes('=') ? process.argv[i].split('=')[1] : process.argv[i + 1];
    const maxMounts = raw === undefined || !/^\d+$/.test(raw) ? 512 : Number(raw);
    const env = { ...process.env, UV_THREADPOOL_SIZE: String(Math.min(1024, maxMounts + 8)) };
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env,
    });
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, sig) => process.exit(code ?? (sig === null ? 1 : 128)));
  } else {
    await import('../dist/fuse/holder/main.js');
  }
} else {
  const { main } = await import('../dist/main.js');
  await main(process.argv);
}
