// FuseHolder's rules with a fake /dev/fuse and fake daemon links: what is pending, queued, replayed or dropped,
// connection replacement, and the failure answers; plus the wire framing (round trip and malformed input).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError, UnavailableError } from '../../src/errors.js';
import { FuseHolder, type DaemonLink, type HolderDevice } from '../../src/fuse/holder/holder.js';
import {
  encodeControl,
  encodeData,
  FrameDecoder,
  MAX_FRAME_BYTES,
  type ControlMessage,
  type Frame,
} from '../../src/fuse/holder/wire.js';
import { replyBytes } from '../../src/fuse/raw/protocol.js';
import { silentLogger } from '../../src/log.js';

const INIT = 26;
const LOOKUP = 1;
const READ = 15;
const FORGET = 2;
const BATCH_FORGET = 42;
const INTERRUPT = 36;

function request(opcode: number, unique: number, nodeid = 1): Buffer {
  const b = Buffer.alloc(48);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(BigInt(unique), 8);
  b.writeBigUInt64LE(BigInt(nodeid), 16);
  return b;
}

function reply(unique: number, error = 0): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(b.length, 0);
  b.writeInt32LE(error, 4);
  b.writeBigUInt64LE(BigInt(unique), 8);
  return b;
}

const uniqueOf = (b: Buffer): number => Number(b.readBigUInt64LE(8));

/** The MOUNT message a daemon sends (only id, mountpoint and meta vary in these tests). */
function mountMessage(id: string, mountpoint: string, meta: Record<string, string> = {}): ControlMessage {
  return { type: 'mount', id, mountpoint, fsname: 'f', subtype: 'ferry', options: [], meta };
}

function fakeDevice() {
  const loops = new Map<number, { onRequest: (r: Buffer) => void; end: () => void }>();
  const written: Array<{ fd: number; frame: Buffer }> = [];
  const calls: string[] = [];
  let nextFd = 10;
  let writeError: NodeJS.ErrnoException | undefined;
  const device: HolderDevice = {
    mount: async (o) => {
      calls.push(`mount ${o.mountpoint}`);
      await new Promise((r) => setImmediate(r));
      if (o.mountpoint.includes('fail')) throw new UnavailableError(`cannot mount ${o.mountpoint}: nope`);
      return nextFd++;
    },
    readRequests: (fd, onRequest) => new Promise((end) => loops.set(fd, { onRequest, end })),
    write: (fd, frame) => {
      if (writeError !== undefined) {
        const e = writeError;
        writeError = undefined;
        throw e;
      }
      written.push({ fd, frame: replyBytes(frame) });
      return true;
    },
    unmount: (mnt) => (calls.push(`umount ${mnt}`), Promise.resolve()),
    connectionOf: () => Promise.resolve(77),
    abort: (c) => (calls.push(`abort ${c}`), Promise.resolve(true)),
    close: (fd) => void calls.push(`close ${fd}`),
  };
  return {
    device,
    written,
    calls,
    kernel: (fd: number, req: Buffer) => loops.get(fd)!.onRequest(req),
    endLoop: (fd: number) => loops.get(fd)!.end(),
    failNextWrite: (code: string) => (writeError = Object.assign(new Error(code), { code })),
  };
}

function fakeLink() {
  const control: ControlMessage[] = [];
  const requests: Array<{ handle: number; req: Buffer }> = [];
  let closedReason: string | undefined;
  const link: DaemonLink = {
    send: (m) => void control.push(m),
    sendRequest: (handle, req) => void requests.push({ handle, req }),
    close: (reason) => void (closedReason = reason),
  };
  return { link, control, requests, closed: () => closedReason };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

async function setup(maxMounts = 4) {
  const dev = fakeDevice();
  const holder = new FuseHolder({ device: dev.device, log: silentLogger(), maxMounts, pid: 4242 });
  const a = fakeLink();
  const conn = holder.connect(a.link);
  conn.message(mountMessage('m1', '/mnt/one', { layer: 'sha256:aa' }));
  await tick();
  const mounted = a.control.find((m) => m.type === 'mounted');
  if (mounted?.type !== 'mounted') throw new Error('not mounted');
  return { dev, holder, a, conn, handle: mounted.handle, fd: 10 };
}

describe('FuseHolder', () => {
  it('greets a daemon, mounts, forwards requests and writes their replies once', async () => {
    const { dev, holder, a, conn, handle, fd } = await setup();
    expect(a.control[0]).toEqual({ type: 'hello', pid: 4242, version: 1, mounts: [] });
    dev.kernel(fd, request(INIT, 1));
    dev.kernel(fd, request(LOOKUP, 2));
    expect(a.requests.map((r) => [r.handle, uniqueOf(r.req)])).toEqual([
      [handle, 1],
      [handle, 2],
    ]);
    expect(holder.counts('m1')).toEqual({ queued: 0, pending: 2 });
    conn.reply(handle, reply(2));
    conn.reply(handle, reply(2)); // a duplicate: not pending any more
    conn.reply(handle, reply(99)); // never asked
    expect(dev.written.map((w) => uniqueOf(w.frame))).toEqual([2]);
    expect(holder.counts('m1')).toEqual({ queued: 0, pending: 1 });
    conn.reply(handle, reply(0)); // unique 0: a notification, written as is
    expect(dev.written).toHaveLength(2);
  });

  it('never tracks FORGET, BATCH_FORGET or INTERRUPT: forwarded when attached, dropped when queued', async () => {
    const { dev, holder, a, conn, fd } = await setup();
    for (const op of [FORGET, BATCH_FORGET, INTERRUPT]) dev.kernel(fd, request(op, 10 + op));
    expect(a.requests).toHaveLength(3);
    expect(holder.counts('m1')).toEqual({ queued: 0, pending: 0 });
    conn.closed();
    for (const op of [FORGET, BATCH_FORGET, INTERRUPT, READ]) dev.kernel(fd, request(op, 100 + op));
    expect(holder.counts('m1')).toEqual({ queued: 1, pending: 0 });
  });

  it('replays unanswered requests first, then queued ones, in arrival order, to the next daemon', async () => {
    const { dev, holder, a, conn, fd } = await setup();
    dev.kernel(fd, request(INIT, 1));
    dev.kernel(fd, request(READ, 2));
    dev.kernel(fd, request(READ, 3));
    conn.reply(1, reply(1));
    conn.closed(); // kill -9: 2 and 3 were taken and never answered
    expect(a.closed()).toBe('connection closed');
    dev.kernel(fd, request(READ, 4));
    dev.kernel(fd, request(LOOKUP, 5));
    expect(holder.counts('m1')).toEqual({ queued: 2, pending: 2 });
    const b = fakeLink();
    const conn2 = holder.connect(b.link);
    const hello = b.control[0];
    expect(hello?.type === 'hello' && hello.mounts).toEqual([
      {
        id: 'm1',
        mountpoint: '/mnt/one',
        handle: 1,
        meta: { layer: 'sha256:aa' },
        init: request(INIT, 1).toString('base64'),
      },
    ]);
    expect(b.requests).toEqual([]); // nothing flows before ATTACH
    conn2.message({ type: 'attach', id: 'm1' });
    expect(b.requests.map((r) => uniqueOf(r.req))).toEqual([2, 3, 4, 5]);
    expect(b.control.at(-1)).toEqual({ type: 'attached', id: 'm1', handle: 1, replayed: 4 });
    expect(holder.counts('m1')).toEqual({ queued: 0, pending: 4 });
    conn2.reply(1, reply(3));
    expect(dev.written.map((w) => uniqueOf(w.frame))).toEqual([1, 3]);
  });

  it('a new connection replaces the old one; the old one is closed and its replies and messages dropped', async () => {
    const { dev, holder, a, conn, handle, fd } = await setup();
    dev.kernel(fd, request(READ, 7));
    const b = fakeLink();
    const conn2 = holder.connect(b.link);
    expect(a.closed()).toBe('replaced by a new daemon connection');
    conn.reply(handle, reply(7)); // the old daemon answers late: dropped, the request stays pending
    conn.message({ type: 'unmount', id: 'm1' });
    expect(dev.written).toEqual([]);
    expect(dev.calls).not.toContain('umount /mnt/one');
    dev.kernel(fd, request(READ, 8)); // not attached yet: queued for the new daemon
    expect(b.requests).toEqual([]);
    conn2.message({ type: 'attach', id: 'm1' });
    expect(b.requests.map((r) => uniqueOf(r.req))).toEqual([7, 8]);
    conn2.reply(handle, reply(7));
    expect(dev.written.map((w) => uniqueOf(w.frame))).toEqual([7]);
    conn.closed(); // the old socket's close arrives late: must not detach the new daemon
    expect(holder.connected).toBe(true);
    dev.kernel(fd, request(READ, 9));
    expect(b.requests.map((r) => uniqueOf(r.req))).toEqual([7, 8, 9]);
  });

  it('answers EIO itself when the kernel refuses a reply, so no reader waits forever', async () => {
    const { dev, conn, handle, fd } = await setup();
    dev.kernel(fd, request(READ, 5));
    dev.failNextWrite('EINVAL');
    conn.reply(handle, reply(5));
    expect(dev.written.map((w) => [uniqueOf(w.frame), w.frame.readInt32LE(4)])).toEqual([[5, -5]]);
  });

  it('answers unknown ids, duplicates, failures and the mount limit instead of crashing', async () => {
    const { holder, a, conn } = await setup(2);
    conn.message({ type: 'attach', id: 'nope' });
    conn.message({ type: 'unmount', id: 'nope' });
    conn.message(mountMessage('m1', '/mnt/x'));
    conn.message(mountMessage('bad', '/mnt/fail'));
    conn.message({ type: 'hello', pid: 1, version: 1, mounts: [] });
    await tick();
    conn.message(mountMessage('m2', '/mnt/two'));
    await tick();
    conn.message(mountMessage('m3', '/mnt/three'));
    await tick();
    const answers = a.control
      .slice(2)
      .map((m) => `${m.type} ${'id' in m ? m.id : ''} ${'message' in m ? m.message : ''}`);
    expect(answers).toEqual([
      'error nope cannot attach nope: no such mount',
      'failed nope cannot unmount nope: no such mount',
      'failed m1 cannot mount /mnt/x: id m1 is already held',
      'error  unexpected hello message from the daemon',
      'failed bad cannot mount /mnt/fail: nope',
      'mounted m2 ',
      'failed m3 cannot mount /mnt/three: holder is at its limit of 2 mounts',
    ]);
    expect(holder.mountCount).toBe(2);
  });

  it('UNMOUNT unmounts lazily, aborts the connection and stops tracking; a vanished connection is reported', async () => {
    const { dev, holder, a, conn, fd } = await setup();
    conn.message(mountMessage('m2', '/mnt/two'));
    await tick();
    dev.kernel(fd, request(READ, 1));
    conn.message({ type: 'unmount', id: 'm1' });
    await tick();
    expect(dev.calls).toEqual(['mount /mnt/one', 'mount /mnt/two', 'umount /mnt/one', 'abort 77']);
    expect(a.control.at(-1)).toEqual({ type: 'unmounted', id: 'm1' });
    const before = a.requests.length;
    dev.kernel(fd, request(READ, 2)); // the busy mount's last gasps are not forwarded any more
    expect(a.requests).toHaveLength(before);
    dev.endLoop(fd);
    await tick();
    expect(dev.calls.at(-1)).toBe('close 10');
    dev.endLoop(11); // someone else unmounted m2: its read loop ends
    await tick();
    expect(dev.calls.at(-1)).toBe('close 11');
    expect(a.control.at(-1)).toEqual({ type: 'unmounted', id: 'm2' });
    expect(holder.mountCount).toBe(0);
  });

  it('a mount that completes after its daemon left is unmounted (its successor never heard of it)', async () => {
    const dev = fakeDevice();
    const holder = new FuseHolder({ device: dev.device, log: silentLogger(), maxMounts: 4 });
    const a = fakeLink();
    holder.connect(a.link).message({
      type: 'mount',
      id: 'x',
      mountpoint: '/mnt/x',
      fsname: 'f',
      subtype: 'ferry',
      options: [],
      meta: {},
    });
    const b = fakeLink();
    holder.connect(b.link);
    expect(b.control[0]?.type === 'hello' && b.control[0].mounts).toEqual([]);
    await tick();
    expect(dev.calls).toEqual(['mount /mnt/x', 'umount /mnt/x', 'abort 77']);
    expect(holder.mountCount).toBe(0);
  });

  it('reports changes of mounts and connection for the exit timers; shutdown unmounts everything', async () => {
    const { dev, holder, conn } = await setup();
    const seen: string[] = [];
    holder.onChange(() => seen.push(`${holder.mountCount}/${holder.connected}`));
    conn.closed();
    await holder.shutdown();
    expect(seen).toEqual(['1/false', '0/false']);
    expect(dev.calls).toContain('umount /mnt/one');
  });
});

const controlArb: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record({ type: fc.constant('attach' as const), id: fc.string() }),
  fc.record({ type: fc.constant('failed' as const), id: fc.string(), message: fc.string() }),
  fc.record({
    type: fc.constant('mount' as const),
    id: fc.string(),
    mountpoint: fc.string(),
    fsname: fc.string(),
    subtype: fc.string(),
    options: fc.array(fc.string()),
    meta: fc.dictionary(
      fc.string().filter((k) => k !== '__proto__'),
      fc.string(),
    ),
  }),
  fc.record({
    type: fc.constant('hello' as const),
    pid: fc.nat(),
    version: fc.nat(),
    mounts: fc.array(
      fc.record({
        id: fc.string(),
        mountpoint: fc.string(),
        handle: fc.nat(),
        meta: fc.constant({}),
        init: fc.option(fc.base64String(), { nil: null }),
      }),
    ),
  }),
);

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  controlArb.map((message) => ({ kind: 'control' as const, message })),
  fc.record({
    kind: fc.constantFrom('request' as const, 'reply' as const),
    handle: fc.nat(),
    data: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
  }),
);

function encode(f: Frame): Buffer {
  return f.kind === 'control' ? encodeControl(f.message) : encodeData(f.kind, f.handle, replyBytes(f.data));
}

describe('holder wire framing', () => {
  it('round-trips any frame sequence, however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb, { maxLength: 8 }),
        fc.array(fc.nat({ max: 64 }), { maxLength: 20 }),
        (frames, cuts) => {
          const stream = Buffer.concat(frames.map(encode));
          const d = new FrameDecoder();
          const out: Frame[] = [];
          let at = 0;
          for (const c of cuts) {
            const end = Math.min(stream.length, at + c);
            out.push(...d.push(stream.subarray(at, end)));
            at = end;
          }
          out.push(...d.push(stream.subarray(at)));
          // A reply may come out in the pieces the stream was cut into: compare its bytes.
          const flat = (f: Frame): Frame => (f.kind === 'reply' ? { ...f, data: replyBytes(f.data) } : f);
          expect(out.map(flat)).toEqual(frames.map(flat));
        },
      ),
    );
  });

  it('malformed input is a FormatError (or an incomplete frame), never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          new FrameDecoder().push(Buffer.from(bytes));
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
        }
      }),
    );
  });

  it('rejects oversized lengths, unknown kinds, bad JSON and ill-typed control messages', () => {
    const frame = (kind: number, body: Buffer): Buffer => {
      const h = Buffer.alloc(5);
      h.writeUInt32LE(1 + body.length, 0);
      h[4] = kind;
      return Buffer.concat([h, body]);
    };
    const bad = [
      Buffer.from([0xff, 0xff, 0xff, 0x7f]), // length far above MAX_FRAME_BYTES, refused before buffering it
      (() => {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(MAX_FRAME_BYTES + 1);
        return b;
      })(),
      Buffer.from([0, 0, 0, 0]),
      frame(9, Buffer.from('x')),
      frame(1, Buffer.from('{not json')),
      frame(1, Buffer.from(JSON.stringify({ type: 'mount', id: 'x' }))),
      frame(1, Buffer.from(JSON.stringify({ type: 'launch-missiles' }))),
      frame(2, Buffer.from([1, 2])), // data frame without a whole handle
    ];
    for (const b of bad) expect(() => new FrameDecoder().push(b), b.toString('hex')).toThrow(FormatError);
    const d = new FrameDecoder();
    expect(() => d.push(bad[0]!)).toThrow(FormatError);
    expect(() => d.push(encodeControl({ type: 'attach', id: 'x' }))).toThrow(FormatError); // stays failed
  });
});
