// One mount as the daemon serves it through the holder: buffers requests until serve() is called, runs each
// through the handler, and sends the reply (a handler failure becomes EIO so no reader waits forever).
import type { Logger } from '../../log.js';
import type { FuseReply } from '../raw/protocol.js';

export interface FuseRequestHandler {
  handle(request: Buffer): Promise<FuseReply | undefined>;
}

export interface HolderSession {
  readonly id: string;
  readonly mountpoint: string;
  /** Starts delivering requests to `handler` (replies written for you; undefined = no reply). Call once. */
  serve(handler: FuseRequestHandler): void;
}

const EIO = 5;

/** A bare fuse_out_header carrying -errno for the request's unique. */
export function errorReply(request: Buffer, errno: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16, 0);
  h.writeInt32LE(-errno, 4);
  request.copy(h, 8, 8, 16);
  return h;
}

export class ClientSession implements HolderSession {
  private handler: FuseRequestHandler | undefined;
  /** Requests that arrived before serve(): the holder forwards them as soon as MOUNTED/ATTACH is sent. */
  private buffered: Buffer[] = [];
  private ended = false;

  constructor(
    readonly id: string,
    readonly mountpoint: string,
    private readonly log: Logger,
    private readonly sendReply: (reply: FuseReply) => void,
  ) {}

  serve(handler: FuseRequestHandler): void {
    if (this.handler !== undefined) throw new Error(`serve() called twice for ${this.mountpoint}`);
    this.handler = handler;
    const waiting = this.buffered;
    this.buffered = [];
    for (const req of waiting) this.run(handler, req);
  }

  /** @internal A request from the holder. */
  deliver(request: Buffer): void {
    if (this.ended) return;
    if (this.handler === undefined) this.buffered.push(request);
    else this.run(this.handler, request);
  }

  /** @internal Unmounted or disconnected: later replies are dropped (the holder replays to the next client). */
  end(): void {
    this.ended = true;
    this.buffered = [];
  }

  private run(handler: FuseRequestHandler, request: Buffer): void {
    let pending: Promise<FuseReply | undefined>;
    try {
      pending = handler.handle(request);
    } catch (e) {
      pending = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    pending.then(
      (reply) => {
        if (reply !== undefined && !this.ended) this.sendReply(reply);
      },
      (e: unknown) => {
        this.log.error(
          { mountpoint: this.mountpoint, err: String(e) },
          'FUSE request handler failed; answering EIO',
        );
        if (!this.ended && request.length >= 16) this.sendReply(errorReply(request, EIO));
      },
    );
  }
}
