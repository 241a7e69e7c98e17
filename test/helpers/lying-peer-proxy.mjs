// A peer that lies: an h2c proxy in front of a real Ferry peer server. It passes every request, header and trailer
// through (so the answer's MACs, which bind the digest and length, still hold) and flips one bit in the first
// byte of every chunk body: a cluster member with the secret serving wrong bytes. Run in the liar's namespace:
//   node lying-peer-proxy.mjs <listen host:port> <upstream host:port>
// It prints "listening" once bound.
import { connect, constants, createServer } from 'node:http2';

const [listen, upstream] = process.argv.slice(2);
if (listen === undefined || upstream === undefined) {
  console.error('usage: lying-peer-proxy.mjs <listen host:port> <upstream host:port>');
  process.exit(2);
}

let session;
function upstreamSession() {
  if (session === undefined || session.closed || session.destroyed) {
    session = connect(`http://${upstream}`);
    session.on('error', () => undefined);
  }
  return session;
}

const HOP = new Set([':status', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade']);
const isChunk = (path) => path !== '/healthz' && !path.startsWith('/index/');

const server = createServer();
server.on('stream', (stream, headers) => {
  const path = String(headers[':path']);
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':')) out[k] = v;
  out[':method'] = headers[':method'];
  out[':path'] = path;
  const fwd = upstreamSession().request(out, { endStream: true });
  let trailers = {};
  let flipped = false;
  fwd.on('response', (h) => {
    const back = { ':status': h[':status'] };
    for (const [k, v] of Object.entries(h)) if (!HOP.has(k)) back[k] = v;
    stream.respond(back, { waitForTrailers: true });
  });
  fwd.on('trailers', (t) => (trailers = t));
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  fwd.on('data', (chunk) => {
    if (!flipped && isChunk(path) && chunk.length > 0) {
      chunk = Buffer.from(chunk);
      chunk[0] ^= 0x01;
      flipped = true;
    }
    stream.write(chunk);
  });
  fwd.on('end', () => stream.end());
  fwd.on('error', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
  stream.on('close', () => fwd.close());
  stream.on('error', () => undefined);
});
const [host, port] = [
  listen.slice(0, listen.lastIndexOf(':')),
  Number(listen.slice(listen.lastIndexOf(':') + 1)),
];
server.listen(port, host, () => console.log('listening'));
