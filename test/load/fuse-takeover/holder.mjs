// Restart prototype, the long-lived part: opens /dev/fuse, mounts it with mount(8) `-o fd=3` (no fusermount,
// no native code), and runs the FUSE server as a child that inherits the descriptor as fd 3; when the server
// dies (kill -9 included) it starts a new one on the same descriptor — the mount never goes away.
// Usage: node holder.mjs <mountpoint> <server.mjs>. Prints "mounted", then "server <pid>" per server start.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';

const [mnt, server] = process.argv.slice(2);
mkdirSync(mnt, { recursive: true });
const fd = openSync('/dev/fuse', 'r+');
const opts = 'fd=3,rootmode=40000,user_id=0,group_id=0,allow_other,ro,default_permissions';
const m = spawnSync('mount', ['-i', '-t', 'fuse', '-o', opts, 'ferry-proto', mnt], {
  stdio: ['ignore', 'inherit', 'inherit', fd],
});
if (m.status !== 0) process.exit(1);
console.log('mounted');
let stopping = false;
function start(takeover) {
  const child = spawn(process.execPath, [server, takeover ? 'takeover' : 'fresh'], {
    stdio: ['ignore', 'inherit', 'inherit', fd],
  });
  console.log(`server ${child.pid}`);
  child.on('exit', () => {
    if (!stopping) start(true);
  });
}
start(false);
process.on('SIGTERM', () => {
  stopping = true;
  spawnSync('umount', ['-l', mnt]);
  process.exit(0);
});
