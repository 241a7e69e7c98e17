// Test fakes for p2p: a manual clock, a fixed peer view, and layer indexes over real chunk bytes.
import { sha256, type Digest } from '../../src/image/digest.js';
import type { LayerIndex } from '../../src/image/layer-index.js';
import type { ChunkRequest, ChunkSource } from '../../src/source/chunk-source.js';
import type { Clock, TimerHandle } from '../../src/p2p/clock.js';
import type { PeerView } from '../../src/p2p/membership.js';

export class ManualClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  now(): number {
    return this.t;
  }
  after(ms: number, fn: () => void): TimerHandle {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => (timer.live = false) };
  }
  /** Advances time, firing due timers in order and letting promises settle in between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = this.timers.filter((x) => x.live && x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      this.t = due.at;
      due.live = false;
      due.fn();
    }
    this.t = end;
    await flush();
  }
}

export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

export class FixedView implements PeerView {
  down: string[] = [];
  penalised: string[] = [];
  constructor(
    readonly self: string,
    private readonly peers: string[],
  ) {}
  live(): readonly string[] {
    return [
      this.self,
      ...this.peers.filter((p) => !this.down.includes(p) && !this.penalised.includes(p)),
    ].sort();
  }
  markDown(peer: string): void {
    this.down.push(peer);
  }
  penalise(peer: string): void {
    this.penalised.push(peer);
  }
}

export function testIndex(chunks: Buffer[]): LayerIndex {
  let offset = 0;
  return {
    version: 1,
    layerDigest: sha256(Buffer.concat(chunks)),
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    format: 'tar',
    codec: 'identity',
    compressedSize: offset,
    uncompressedSize: offset,
    entries: [],
    chunks: chunks.map((c) => {
      const chunk = {
        digest: sha256(c),
        offset,
        size: c.length,
        compressedStart: offset,
        compressedEnd: offset + c.length,
        checkpoint: -1,
        skip: 0,
      };
      offset += c.length;
      return chunk;
    }),
    checkpoints: [],
    windows: [],
    build: { tool: 'test', createdAt: '', durationMs: 0 },
  };
}

/** An origin that serves chunk bytes from a table, counting calls, optionally after a delay. */
export class TableOrigin implements ChunkSource {
  calls = 0;
  constructor(
    private readonly bytes: Map<Digest, Buffer>,
    private readonly delay: () => Promise<void> = () => Promise.resolve(),
  ) {}
  async fetch(req: ChunkRequest, signal?: AbortSignal): Promise<Buffer> {
    this.calls++;
    await this.delay();
    signal?.throwIfAborted();
    const d = req.index.chunks[req.chunk]!.digest;
    return this.bytes.get(d)!;
  }
}
