// A TCP relay that delays every byte by a fixed time in each direction (the kernel here has no netem): run inside
// the benchmark's network namespace in front of its registry, so the shaped link has a round-trip time.
// Usage: node delay-relay.mjs <listen host> <listen port> <upstream host> <upstream port> <one-way ms>
import { connect, createServer } from 'node:net';

const [host, port, upHost, upPort, delayText] = process.argv.slice(2);
const delay = Number(delayText);

/** Forwards `from` to `to`, each piece `delay` ms after it arrived; equal delays keep the order. */
function pipeDelayed(from, to) {
  from.on('data', (b) => setTimeout(() => to.destroyed || to.write(b), delay));
  from.on('end', () => setTimeout(() => to.end(), delay));
  from.on('error', () => to.destroy());
}

const server = createServer((client) => {
  const upstream = connect(Number(upPort), upHost);
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  pipeDelayed(client, upstream);
  pipeDelayed(upstream, client);
  client.on('close', () => setTimeout(() => upstream.destroy(), delay));
  upstream.on('close', () => setTimeout(() => client.destroy(), delay));
});
server.listen(Number(port), host, () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => process.exit(0));
