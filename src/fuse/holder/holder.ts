// The holder's state machine, free of sockets and of /dev/fuse (both injected): which mounts it holds, which
// daemon connection serves them, and every kernel request forwarded but not yet answered, so none is ever lost.
import type { Logger } from '../../log.js';
import type { FuseMountOptions } from '../raw/device.js';
import { replyHead, replyLength, type FuseReply } from '../raw/protocol.js';
import { RequestLedger } from './request-ledger.js';
import type { ControlMessage, HelloMount } from './wire.js';
import { WIRE_VERSION } from './wire.js';

/** The /dev/fuse side, injected so the rules below can be tested without the kernel. */
export interface HolderDevice {
  mount(o: FuseMountOptions): Promise<number>;
  readRequests(fd: number, onRequest: (req: Buffer) => void): Promise<void>;
  write(fd: number, frame: FuseReply): boolean;
  unmount(mountpoint: string): Promise<void>;
  /** The fusectl connection number of a mount (to abort it after a lazy unmount left it busy). */
  connectionOf(mountpoint: string): Promise<number | undefined>;
  abort(connection: number): Promise<boolean>;
  close(fd: number): void;
}

/** One daemon connection, as the holder sees it. */
export interface DaemonLink {
  send(message: ControlMessage): void;
  sendRequest(handle: number, request: Buffer): void;
  close(reason: string): void;
}

/** What the transport feeds in for one connection. */
export interface HolderConnection {
  message(m: ControlMessage): void;
  reply(handle: number, data: FuseReply): void;
  closed(): void;
}

export interface FuseHolderOptions {
  device: HolderDevice;
  log: Logger;
  /** MOUNT beyond this many held mounts → FAILED (each mount ties one libuv pool thread). */
  maxMounts: number;
  pid?: number;
  /** Announced in HELLO: the snapshots socket this holder relays (socket-relay.ts), so the daemon binds target. */
  snapshots?: { socket: string; target: string };
}

const EIO = 5;

interface Conn {
  readonly link: DaemonLink;
  readonly seq: number;
}

interface HeldMount {
  id: string;
  handle: number;
  mountpoint: string;
  meta: Record<string, string>;
  fd: number; // -1 while mount(8) runs
  connection: number | undefined;
  owner: Conn | undefined;
  requests: RequestLedger;
}

export class FuseHolder {
  private readonly mounts = new Map<string, HeldMount>();
  private readonly byHandle = new Map<number, HeldMount>();
  private current: Conn | undefined;
  private nextHandle = 1;
  private nextSeq = 1;
  private stopping = false;
  private readonly listeners: Array<() => void> = [];
  private readonly loops = new Set<Promise<void>>();
  private readonly mounting = new Set<Promise<void>>();

  constructor(private readonly o: FuseHolderOptions) {}

  get mountCount(): number {
    return this.mounts.size;
  }

  get connected(): boolean {
    return this.current !== undefined;
  }

  /** Called after every change of mountCount or connected (main.ts runs its exit timers from it). */
  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  /** For tests and logs: requests of a mount waiting for a daemon / forwarded and unanswered. */
  counts(id: string): { queued: number; pending: number } | undefined {
    const m = this.mounts.get(id);
    return m && { queued: m.requests.queued, pending: m.requests.unanswered };
  }

  /** A new daemon connection; the previous one is closed and its mounts wait for an ATTACH. */
  connect(link: DaemonLink): HolderConnection {
    const previous = this.current;
    if (previous !== undefined) this.disconnect(previous, 'replaced by a new daemon connection');
    const conn: Conn = { link, seq: this.nextSeq++ };
    this.current = conn;
    this.o.log.info({ conn: conn.seq, mounts: this.mounts.size }, 'daemon connected');
    const { snapshots } = this.o;
    const pid = this.o.pid ?? process.pid;
    link.send({
      type: 'hello',
      pid,
      version: WIRE_VERSION,
      mounts: this.hello(),
      ...(snapshots !== undefined ? { snapshots } : {}),
    });
    this.changed();
    return {
      message: (m) => this.onMessage(conn, m),
      reply: (handle, data) => this.onReply(conn, handle, data),
      closed: () => this.disconnect(conn, 'connection closed'),
    };
  }

  /** Lazily unmounts everything (SIGTERM, orphan timeout). The process exit then closes the descriptors. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.current !== undefined) this.disconnect(this.current, 'holder shutting down');
    // A mount still running mount(8) unmounts itself when it finishes (it sees `stopping`).
    await Promise.all([
      ...[...this.mounts.values()].filter((m) => m.fd >= 0).map((m) => this.unmount(m)),
      ...this.mounting,
    ]);
  }

  /** Resolves when every read loop has ended (tests). */
  async drained(): Promise<void> {
    await Promise.all([...this.loops]);
  }

  private hello(): HelloMount[] {
    return [...this.mounts.values()]
      .filter((m) => m.fd >= 0)
      .map((m) => ({
        id: m.id,
        mountpoint: m.mountpoint,
        handle: m.handle,
        meta: m.meta,
        init: m.requests.init === undefined ? null : m.requests.init.toString('base64'),
      }));
  }

  private disconnect(conn: Conn, reason: string): void {
    if (this.current !== conn) return;
    this.current = undefined;
    let mounts = 0;
    let unanswered = 0;
    for (const m of this.mounts.values()) {
      if (m.owner !== conn) continue;
      m.owner = undefined;
      mounts++;
      unanswered += m.requests.unanswered;
    }
    conn.link.close(reason);
    this.o.log.info({ conn: conn.seq, reason, mounts, unanswered }, 'daemon disconnected');
    this.changed();
  }

  private onMessage(conn: Conn, m: ControlMessage): void {
    if (conn !== this.current) return;
    switch (m.type) {
      case 'mount': {
        const p = this.mount(conn, m).finally(() => this.mounting.delete(p));
        this.mounting.add(p);
        return;
      }
      case 'attach':
        return this.attach(conn, m.id);
      case 'unmount': {
        const held = this.mounts.get(m.id);
        if (held === undefined || held.fd < 0) {
          const why = held === undefined ? 'no such mount' : 'mount still in progress';
          return conn.link.send({ type: 'failed', id: m.id, message: `cannot unmount ${m.id}: ${why}` });
        }
        void this.unmount(held).then(() => conn.link.send({ type: 'unmounted', id: m.id }));
        return;
      }
      default:
        conn.link.send({ type: 'error', message: `unexpected ${m.type} message from the daemon` });
    }
  }

  private async mount(conn: Conn, m: Extract<ControlMessage, { type: 'mount' }>): Promise<void> {
    const fail = (message: string): void => conn.link.send({ type: 'failed', id: m.id, message });
    if (this.stopping) return fail(`cannot mount ${m.mountpoint}: holder is shutting down`);
    if (this.mounts.has(m.id)) return fail(`cannot mount ${m.mountpoint}: id ${m.id} is already held`);
    if (this.mounts.size >= this.o.maxMounts)
      return fail(`cannot mount ${m.mountpoint}: holder is at its limit of ${this.o.maxMounts} mounts`);
    const held: HeldMount = {
      id: m.id,
      handle: this.nextHandle++ >>> 0,
      mountpoint: m.mountpoint,
      meta: m.meta,
      fd: -1,
      connection: undefined,
      owner: undefined,
      requests: new RequestLedger(),
    };
    this.mounts.set(m.id, held);
    this.byHandle.set(held.handle, held);
    const { mountpoint, fsname, subtype, options } = m;
    try {
      held.fd = await this.o.device.mount({ mountpoint, fsname, subtype, options });
    } catch (e) {
      this.forget(held);
      this.o.log.warn({ id: m.id, mountpoint, err: String(e) }, 'mount failed');
      return fail(e instanceof Error ? e.message : String(e));
    }
    held.connection = await this.o.device.connectionOf(mountpoint).catch(() => undefined);
    if (this.stopping || conn !== this.current) {
      // Nobody knows this mount any more: the daemon that asked is gone (its successor got HELLO without it).
      this.o.log.warn({ id: m.id, mountpoint }, 'mount finished after its daemon left; unmounting it');
      this.startLoop(held); // its end closes the descriptor
      await this.unmount(held);
      return;
    }
    held.owner = conn;
    this.o.log.info({ id: m.id, mountpoint, handle: held.handle, mounts: this.mounts.size }, 'mounted');
    // MOUNTED goes out before the first request (INIT) can, so the daemon knows the handle it arrives with.
    conn.link.send({ type: 'mounted', id: m.id, handle: held.handle });
    this.startLoop(held);
    this.changed();
  }

  private startLoop(held: HeldMount): void {
    const fd = held.fd;
    const loop = this.o.device
      .readRequests(fd, (req) => this.onKernelRequest(held, req))
      .catch((e: unknown) => this.o.log.error({ id: held.id, err: String(e) }, 'reading /dev/fuse failed'))
      .finally(() => {
        this.loops.delete(loop);
        this.o.device.close(fd);
        if (this.mounts.get(held.id) !== held) return;
        // The connection ended without an UNMOUNT (umount by someone else, fusectl abort).
        this.o.log.warn({ id: held.id, mountpoint: held.mountpoint }, 'FUSE connection ended');
        this.forget(held);
        if (held.owner !== undefined && held.owner === this.current)
          held.owner.link.send({ type: 'unmounted', id: held.id });
        this.changed();
      });
    this.loops.add(loop);
  }

  private onKernelRequest(held: HeldMount, req: Buffer): void {
    if (this.mounts.get(held.id) !== held || req.length < 16) return; // unmounted: the abort fails it
    const owner = held.owner;
    const attached = owner !== undefined && owner === this.current;
    if (held.requests.arrive(req, attached)) owner?.link.sendRequest(held.handle, req);
  }

  private attach(conn: Conn, id: string): void {
    const held = this.mounts.get(id);
    if (held === undefined || held.fd < 0) {
      conn.link.send({ type: 'error', id, message: `cannot attach ${id}: no such mount` });
      return;
    }
    held.owner = conn;
    const { requests, replayed, queued } = held.requests.replay();
    for (const req of requests) conn.link.sendRequest(held.handle, req);
    this.o.log.info({ id, mountpoint: held.mountpoint, replayed, queued }, 'attached');
    conn.link.send({ type: 'attached', id, handle: held.handle, replayed: replayed + queued });
    this.changed();
  }

  private onReply(conn: Conn, handle: number, data: FuseReply): void {
    const held = this.byHandle.get(handle);
    const head = replyHead(data);
    if (
      held === undefined ||
      held.owner !== conn ||
      conn !== this.current ||
      held.fd < 0 ||
      head === undefined
    ) {
      this.o.log.debug(
        { handle, bytes: replyLength(data) },
        'reply dropped: mount not held by this connection',
      );
      return;
    }
    const unique = head.readBigUInt64LE(8);
    // unique 0 is a notification (cache invalidation...), which answers nothing.
    if (!held.requests.answer(unique)) {
      this.o.log.debug({ id: held.id, unique: String(unique) }, 'reply dropped: request not pending');
      return;
    }
    try {
      this.o.device.write(held.fd, data);
    } catch (e) {
      this.o.log.warn({ id: held.id, unique: String(unique), err: String(e) }, 'kernel refused a reply');
      if (unique !== 0n) this.writeError(held, unique, EIO);
    }
  }

  /** Fails a request ourselves rather than leave its reader waiting forever. */
  private writeError(held: HeldMount, unique: bigint, errno: number): void {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16, 0);
    h.writeInt32LE(-errno, 4);
    h.writeBigUInt64LE(unique, 8);
    try {
      this.o.device.write(held.fd, h);
    } catch {
      // The connection is gone; nothing waits any more.
    }
  }

  private async unmount(held: HeldMount): Promise<void> {
    if (this.mounts.get(held.id) !== held) return;
    const unanswered = held.requests.unanswered + held.requests.queued;
    this.forget(held);
    try {
      await this.o.device.unmount(held.mountpoint);
    } catch (e) {
      this.o.log.warn({ id: held.id, err: String(e) }, 'lazy unmount failed; aborting the connection');
    }
    // A busy lazy unmount keeps the connection (and our blocked read) alive: abort it so readers get an error
    // instead of waiting for a server that stopped listening. Not busy: it is already gone and this is a no-op.
    if (held.connection !== undefined) await this.o.device.abort(held.connection).catch(() => false);
    this.o.log.info(
      { id: held.id, mountpoint: held.mountpoint, unanswered, mounts: this.mounts.size },
      'unmounted',
    );
    this.changed();
  }

  private forget(held: HeldMount): void {
    if (this.mounts.get(held.id) === held) this.mounts.delete(held.id);
    if (this.byHandle.get(held.handle) === held) this.byHandle.delete(held.handle);
    held.requests.clear();
  }

  private changed(): void {
    for (const cb of this.listeners) cb();
  }
}
