// The requests of one held mount that still need a daemon: those forwarded and not yet answered (replayed to the
// next daemon), and those that arrived while none was attached. Replies to anything else are refused.
const OP_FORGET = 2;
const OP_INIT = 26;
const OP_INTERRUPT = 36;
const OP_BATCH_FORGET = 42;

/** The kernel expects no reply to these: never pending, dropped instead of queued. */
const noReply = (opcode: number): boolean =>
  opcode === OP_FORGET || opcode === OP_BATCH_FORGET || opcode === OP_INTERRUPT;

export class RequestLedger {
  /** The connection's INIT request, kept for successors (they never see it). */
  init: Buffer | undefined;
  /** Arrived while no daemon was attached, in arrival order. */
  private queue: Buffer[] = [];
  /** unique → request forwarded and not yet answered (Map keeps arrival order for replays). */
  private readonly pending = new Map<bigint, Buffer>();

  get queued(): number {
    return this.queue.length;
  }

  get unanswered(): number {
    return this.pending.size;
  }

  /**
   * A kernel request (at least a header long): true when it should go to the attached daemon now. Without a
   * daemon it is queued, unless it takes no reply (then it is dropped: nothing waits for it).
   */
  arrive(req: Buffer, attached: boolean): boolean {
    const opcode = req.readUInt32LE(4);
    if (opcode === OP_INIT && this.init === undefined) this.init = req;
    if (noReply(opcode)) return attached;
    if (attached) this.pending.set(req.readBigUInt64LE(8), req);
    else this.queue.push(req);
    return attached;
  }

  /** For a daemon that attaches: the unanswered requests first, then the queued ones, all pending from now. */
  replay(): { requests: Buffer[]; replayed: number; queued: number } {
    const replayed = this.pending.size;
    const queued = this.queue;
    this.queue = [];
    for (const req of queued) this.pending.set(req.readBigUInt64LE(8), req);
    return { requests: [...this.pending.values()], replayed, queued: queued.length };
  }

  /** A reply for `unique` may be written: true once per pending request (unique 0 is a notification). */
  answer(unique: bigint): boolean {
    return unique === 0n || this.pending.delete(unique);
  }

  clear(): void {
    this.pending.clear();
    this.queue = [];
  }
}
