// Index sharing when nodes see the cluster differently: three real P2P nodes on loopback, where C does not know A.
// C takes B for the layer's owner, B (which sees A) takes A: B sends C's request on to A, once, and the layer is
// built on A alone. Without the hop B built a second copy (2x registry egress, seen once under load).
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import type { Digest } from '../../src/image/digest.js';
import { MemoryChunkStore } from '../../src/chunks/memory-chunk-store.js';
import type { PeerIndexRequest } from '../../src/index/source-peer.js';
import { silentLogger } from '../../src/log.js';
import { indexPath, parseIndexPath } from '../../src/p2p/index-wire.js';
import { startP2PNode, type P2PNode } from '../../src/p2p/p2p-node.js';
import { owners } from '../../src/p2p/rendezvous.js';

const nodes: P2PNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const port = (s.address() as { port: number }).port;
  await new Promise((ok) => s.close(ok));
  return port;
}

/** A layer digest whose owner is `a` over {a, b, c} and `b` over {b, c}. */
function layerOwnedBy(a: string, b: string, c: string): Digest {
  for (;;) {
    const d = `sha256:${randomBytes(32).toString('hex')}` as Digest;
    if (owners(d, [a, b, c].sort(), 1)[0] === a && owners(d, [b, c].sort(), 1)[0] === b) return d;
  }
}

describe('index requests between nodes with different views', () => {
  it('encodes the forwarded mark on the wire', () => {
    const req: PeerIndexRequest = {
      imageRef: 'registry.test/app:1',
      layer: {
        digest: `sha256:${'a'.repeat(64)}` as Digest,
        size: 10,
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      },
      diffId: `sha256:${'b'.repeat(64)}` as Digest,
    };
    expect(parseIndexPath(indexPath(req))?.forwarded).toBeUndefined();
    expect(parseIndexPath(indexPath({ ...req, forwarded: true }))?.forwarded).toBe(true);
  });

  it('sends a request on to the owner this node sees, once, and the owner alone builds', async () => {
    const secret = randomBytes(32).toString('hex');
    const ids = await Promise.all([freePort(), freePort(), freePort()]).then((ps) =>
      ps.map((p) => `127.0.0.1:${p}`),
    );
    const [a, b, c] = ids as [string, string, string];
    const builds: string[] = [];
    const start = (self: string, peers: string[]) =>
      startP2PNode({
        settings: configSchema.parse({ p2p: { enabled: true, listen: self, peers, secret } }).p2p,
        store: new MemoryChunkStore({ maxBytes: 1 << 20 }),
        log: silentLogger(),
        indexForPeer: async (_req, _signal, viaOwner) => {
          const relayed = await viaOwner?.();
          if (relayed !== undefined) return relayed;
          builds.push(self);
          return Buffer.from(`index built by ${self}`);
        },
      }).then((n) => (nodes.push(n), n));
    const [, nodeB, nodeC] = await Promise.all([start(a, ids), start(b, ids), start(c, [b, c])]);
    const layer = layerOwnedBy(a, b, c);
    const req: PeerIndexRequest = {
      imageRef: 'registry.test/app:1',
      layer: { digest: layer, size: 10, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
      diffId: `sha256:${'c'.repeat(64)}` as Digest,
    };
    const got = await nodeC.fetchIndex(req);
    expect(nodeC.membership.live()).toEqual([b, c].sort());
    expect(got?.peer).toBe(b);
    expect(got?.bytes.toString()).toBe(`index built by ${a}`);
    expect(builds).toEqual([a]);
    expect(nodeB.stats().indexesForwarded).toBe(1);
  });
});
