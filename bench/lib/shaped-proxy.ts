// A shaped link as an in-process HTTP proxy (no namespace, no tc): each response starts one RTT late and all of
// them share one link of `bytesPerMs`, in arrival order. Counts the bytes it passed.
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface ShapedProxy {
  /** host:port of the proxy, in front of `upstream`. */
  readonly host: string;
  bytes(): number;
  close(): void;
}

/** Starts the proxy in front of `upstream` (host:port). */
export async function shapedProxy(
  upstream: string,
  o: { rttMs: number; bytesPerMs: number },
): Promise<ShapedProxy> {
  const { rttMs: RTT_MS, bytesPerMs: BYTES_PER_MS } = o;
  let linkFreeAt = 0;
  let total = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    setTimeout(() => {
      const up = request(
        `http://${upstream}${req.url ?? '/'}`,
        { method: req.method, headers: { ...req.headers, host: upstream } },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          res.on('error', () => undefined);
          // One chain per response keeps its writes in order and the end after the last write.
          let chain = Promise.resolve();
          const at = (t: number): Promise<void> =>
            new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));
          upRes.on('data', (chunk: Buffer) => {
            total += chunk.length;
            linkFreeAt = Math.max(performance.now(), linkFreeAt) + chunk.length / BYTES_PER_MS;
            const t = linkFreeAt;
            chain = chain.then(() => at(t)).then(() => void res.write(chunk));
          });
          upRes.on('end', () => void chain.then(() => res.end()));
          upRes.on('error', () => res.destroy());
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    }, RTT_MS);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    bytes: () => total,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
