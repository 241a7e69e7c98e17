// The daemon's side of the FUSE holder: mount/attach/unmount over the holder's socket, and per mount a session
// that hands each kernel request to a handler and sends its reply back. ensureHolder starts a holder if needed.
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import {
  AbortedError,
  InvalidArgumentError,
  isFerryError,
  NotFoundError,
  UnavailableError,
} from '../../errors.js';
import type { Logger } from '../../log.js';
import { ClientSession as Session, type HolderSession } from './session.js';
import { openHolderConnection, type Hello } from './handshake.js';
import { replyLength } from '../raw/protocol.js';
import { encodeControl, encodeData, encodeDataHeader, type ControlMessage, type Frame } from './wire.js';
import { holderPoolThreads } from '../../os/threadpool.js';

export type { FuseRequestHandler, HolderSession } from './session.js';

export interface HeldMount {
  id: string;
  mountpoint: string;
  meta: Record<string, string>;
  /** The connection's INIT request (a successor needs the negotiated parameters); absent if none arrived. */
  init?: Buffer;
}

export interface HolderMountOptions {
  id: string;
  mountpoint: string;
  fsname: string;
  subtype: string;
  options: readonly string[];
  meta?: Record<string, string>;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

export class HolderClient {
  readonly holderPid: number;
  /** Mounts the holder already had when this client connected (HELLO). */
  readonly inherited: readonly HeldMount[];
  /** The snapshots socket the holder keeps for us: serve on `target`, never bind `socket` (HELLO). */
  readonly snapshots: { socket: string; target: string } | undefined;
  private readonly handles = new Map<string, number>();
  private readonly sessions = new Map<number, Session>();
  /** MOUNT sent, MOUNTED not yet seen. The session is made when MOUNTED is read, before any later frame. */
  private readonly mounting = new Map<string, Waiter<Session> & { mountpoint: string }>();
  private readonly unmounting = new Map<string, Array<Waiter<void>>>();
  private readonly closeListeners: Array<(err?: Error) => void> = [];
  private closing = false;
  private ended = false;

  private constructor(
    private readonly sock: Socket,
    private readonly log: Logger,
    hello: Hello,
  ) {
    this.holderPid = hello.pid;
    this.snapshots = hello.snapshots;
    this.inherited = hello.mounts.map((m) => {
      this.handles.set(m.id, m.handle);
      const held: HeldMount = { id: m.id, mountpoint: m.mountpoint, meta: m.meta };
      if (m.init !== null) held.init = Buffer.from(m.init, 'base64');
      return held;
    });
  }

  /** Connects to a running holder; UnavailableError when nothing listens on socketPath. */
  static async connect(o: { socketPath: string; log: Logger; signal?: AbortSignal }): Promise<HolderClient> {
    const c = await openHolderConnection(o.socketPath, o.log, o.signal);
    const client = new HolderClient(c.sock, o.log, c.hello);
    c.listen(
      (f) => client.onFrame(f),
      () => client.onSocketClose(),
    );
    return client;
  }

  async mount(o: HolderMountOptions, signal?: AbortSignal): Promise<HolderSession> {
    if (this.ended)
      throw new UnavailableError(`cannot mount ${o.mountpoint}: the FUSE holder connection is closed`);
    if (this.mounting.has(o.id) || this.handles.has(o.id))
      throw new InvalidArgumentError(`cannot mount ${o.mountpoint}: id ${o.id} is already in use`);
    if (signal?.aborted) throw new AbortedError(`mount of ${o.mountpoint} aborted`);
    const { mountpoint } = o;
    const made = new Promise<Session>((resolve, reject) =>
      this.mounting.set(o.id, { resolve, reject, mountpoint }),
    );
    const { id, fsname, subtype } = o;
    this.send({
      type: 'mount',
      id,
      mountpoint,
      fsname,
      subtype,
      options: [...o.options],
      meta: o.meta ?? {},
    });
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_res, rej) => {
      onAbort = () => rej(new AbortedError(`mount of ${o.mountpoint} aborted`));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([made, aborted]);
    } catch (e) {
      // Aborted: the holder may still finish the mount; onFrame unmounts it when MOUNTED comes without a waiter.
      if (isFerryError(e, 'ABORTED') && this.mounting.has(id))
        this.mounting.set(id, { resolve: () => void this.unmount(id), reject: () => undefined, mountpoint });
      throw e;
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Takes over an inherited mount: its queued and unanswered requests start flowing to serve()'s handler. */
  attach(id: string): HolderSession {
    const held = this.inherited.find((m) => m.id === id);
    const handle = this.handles.get(id);
    if (held === undefined || handle === undefined)
      throw new NotFoundError(`the FUSE holder has no mount ${id}`);
    if (this.sessions.has(handle)) throw new InvalidArgumentError(`mount ${id} is already attached`);
    if (this.ended) throw new UnavailableError(`cannot attach ${id}: the FUSE holder connection is closed`);
    const s = this.session(id, held.mountpoint, handle);
    this.send({ type: 'attach', id });
    return s;
  }

  async unmount(id: string, signal?: AbortSignal): Promise<void> {
    if (this.ended) throw new UnavailableError(`cannot unmount ${id}: the FUSE holder connection is closed`);
    if (signal?.aborted) throw new AbortedError(`unmount of ${id} aborted`);
    const done = new Promise<void>((resolve, reject) => {
      const list = this.unmounting.get(id) ?? [];
      if (list.length === 0) this.send({ type: 'unmount', id });
      list.push({ resolve, reject });
      this.unmounting.set(id, list);
      signal?.addEventListener('abort', () => reject(new AbortedError(`unmount of ${id} aborted`)), {
        once: true,
      });
    });
    await done;
  }

  /** The holder went away (the mounts are gone with it). */
  onClose(cb: (err?: Error) => void): void {
    this.closeListeners.push(cb);
  }

  /** Detaches: the holder keeps the mounts and queues their requests for the next client. */
  async close(): Promise<void> {
    if (this.ended) return;
    this.closing = true;
    const closed = new Promise<void>((res) => this.sock.once('close', () => res()));
    this.sock.end();
    setTimeout(() => this.sock.destroy(), 1000).unref();
    await closed;
  }

  private session(id: string, mountpoint: string, handle: number): Session {
    this.handles.set(id, handle);
    const s = new Session(id, mountpoint, this.log, (reply) => {
      if (this.ended || this.sessions.get(handle) !== s) return;
      if (Buffer.isBuffer(reply) && reply.length < 16 * 1024)
        return void this.sock.write(encodeData('reply', handle, reply));
      // A READ reply: frame header and reply pieces in one writev, without copying the data.
      this.sock.cork();
      this.sock.write(encodeDataHeader('reply', handle, replyLength(reply)));
      for (const piece of Buffer.isBuffer(reply) ? [reply] : reply) this.sock.write(piece);
      this.sock.uncork();
    });
    this.sessions.set(handle, s);
    return s;
  }

  private send(m: ControlMessage): void {
    if (!this.ended) this.sock.write(encodeControl(m));
  }

  private onFrame(f: Frame): void {
    if (f.kind === 'request') {
      const s = this.sessions.get(f.handle);
      if (s !== undefined) s.deliver(f.data);
      else this.log.debug({ handle: f.handle }, 'request for a mount with no session dropped');
      return;
    }
    if (f.kind !== 'control') return;
    const m = f.message;
    switch (m.type) {
      case 'mounted': {
        const w = this.mounting.get(m.id);
        this.mounting.delete(m.id);
        // Made here, not after the caller's await: a REQUEST (INIT) may follow in this very chunk.
        if (w !== undefined) w.resolve(this.session(m.id, w.mountpoint, m.handle));
        else this.log.warn({ id: m.id }, 'MOUNTED for a mount nobody waits for');
        return;
      }
      case 'failed': {
        const w = this.mounting.get(m.id);
        this.mounting.delete(m.id);
        w?.reject(new UnavailableError(m.message));
        for (const u of this.takeUnmounting(m.id)) u.reject(new NotFoundError(m.message));
        return;
      }
      case 'unmounted':
        this.forget(m.id);
        for (const u of this.takeUnmounting(m.id)) u.resolve();
        return;
      case 'attached':
        this.log.debug({ id: m.id, replayed: m.replayed }, 'holder attached the mount');
        return;
      case 'error':
        this.log.warn({ id: m.id, err: m.message }, 'FUSE holder reported an error');
        if (m.id !== undefined) this.forget(m.id);
        return;
      default:
        this.log.warn({ type: m.type }, 'unexpected message from the FUSE holder');
    }
  }

  private takeUnmounting(id: string): Array<Waiter<void>> {
    const list = this.unmounting.get(id) ?? [];
    this.unmounting.delete(id);
    return list;
  }

  private forget(id: string): void {
    const handle = this.handles.get(id);
    this.handles.delete(id);
    if (handle === undefined) return;
    this.sessions.get(handle)?.end();
    this.sessions.delete(handle);
  }

  private onSocketClose(): void {
    this.ended = true;
    for (const s of this.sessions.values()) s.end();
    this.sessions.clear();
    const err = new UnavailableError('the FUSE holder connection closed');
    for (const w of this.mounting.values()) w.reject(err);
    this.mounting.clear();
    for (const list of this.unmounting.values()) for (const u of list) u.reject(err);
    this.unmounting.clear();
    if (this.closing) return;
    for (const cb of this.closeListeners) cb(err);
  }
}

/**
 * Connects to the holder at socketPath, starting one (detached: own session, survives this process; stdio
 * inherited) with `command` when nothing listens; waits up to timeoutMs for it. An empty `command` starts
 * nothing and waits for a holder someone else starts (systemd's ferry-fuse.service, a sibling pod).
 */
export async function ensureHolder(o: {
  socketPath: string;
  command: readonly string[];
  log: Logger;
  timeoutMs?: number;
  signal?: AbortSignal;
}): Promise<HolderClient> {
  const connect = (): Promise<HolderClient> =>
    HolderClient.connect({ socketPath: o.socketPath, log: o.log, ...(o.signal ? { signal: o.signal } : {}) });
  try {
    return await connect();
  } catch (e) {
    if (!isFerryError(e, 'UNAVAILABLE')) throw e;
  }
  const [command, ...args] = o.command;
  let exited: string | undefined;
  if (command !== undefined) {
    // Each mount parks a libuv pool thread in a read; libuv sizes the pool at start-up, from the environment
    // only (and this process's own setting says nothing about the holder's needs).
    const i = args.indexOf('--max-mounts');
    const maxMounts = i < 0 ? 512 : Number(args[i + 1] ?? 512);
    const env = {
      ...process.env,
      UV_THREADPOOL_SIZE: String(holderPoolThreads(maxMounts)),
    };
    const child = spawn(command, args, { detached: true, stdio: 'inherit', env });
    child.once('error', (e) => (exited = e.message));
    child.once('exit', (code, sig) => (exited = `exited ${code ?? sig}`));
    child.unref();
    o.log.info({ pid: child.pid, socket: o.socketPath }, 'started a FUSE holder');
  } else {
    o.log.info({ socket: o.socketPath }, 'waiting for the FUSE holder');
  }
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  let last: unknown;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (o.signal?.aborted) throw new AbortedError(`waiting for the FUSE holder at ${o.socketPath} aborted`);
    try {
      return await connect(); // another daemon's holder winning the race is fine too
    } catch (e) {
      if (!isFerryError(e, 'UNAVAILABLE')) throw e;
      last = e;
    }
  }
  const why = exited === undefined ? String(last) : `the holder ${exited}`;
  throw new UnavailableError(`no FUSE holder on ${o.socketPath} after ${o.timeoutMs ?? 10_000} ms: ${why}`);
}
