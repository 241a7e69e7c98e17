// Fallback link shaping when the kernel cannot (no `tc ... tbf`): a loopback TCP relay whose two directions
// each pass through a token bucket. Application-level pacing of whole socket reads, NOT kernel shaping — no
// queueing in the kernel, no TCP feedback from a bottleneck queue — so figures from it are only indicative.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A token bucket as a virtual clock: each take() reserves its bytes' transmission time after the previous one's;
 * a caller waits only for what exceeds the burst.
 */
export class TokenBucket {
  private nextFreeMs = 0;
  private readonly bytesPerMs: number;
  private readonly burstMs: number;

  constructor(options: { rateBitsPerSec: number; burstBytes: number }) {
    this.bytesPerMs = options.rateBitsPerSec / 8 / 1000;
    this.burstMs = options.burstBytes / this.bytesPerMs;
  }

  /** Resolves when `bytes` may be sent. */
  async take(bytes: number): Promise<void> {
    const now = performance.now();
    this.nextFreeMs = Math.max(this.nextFreeMs, now) + bytes / this.bytesPerMs;
    const waitMs = this.nextFreeMs - this.burstMs - now;
    if (waitMs > 1) await sleep(waitMs);
  }
}

export class ThrottleRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly down: TokenBucket;
  private readonly up: TokenBucket;

  constructor(private readonly options: { upstream: string; rateBitsPerSec: number; burstBytes: number }) {
    this.down = new TokenBucket(options);
    this.up = new TokenBucket(options);
  }

  get host(): string {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (!a) throw new Error('relay not started');
    return `127.0.0.1:${a.port}`;
  }

  async start(): Promise<this> {
    const [uh, up] = this.options.upstream.split(':');
    const server = createServer((client) => {
      const upstream = connect({ host: uh ?? '127.0.0.1', port: Number(up) });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      this.pace(client, upstream, this.up);
      this.pace(upstream, client, this.down);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    return this;
  }

  private pace(from: Socket, to: Socket, bucket: TokenBucket): void {
    from.on('data', (data: Buffer) => {
      from.pause();
      void bucket.take(data.length).then(() => {
        if (!to.destroyed) to.write(data);
        from.resume();
      });
    });
    from.on('end', () => to.end());
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
