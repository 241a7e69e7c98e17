// The holder's socket and the daemon's HolderClient over a real unix socket, with a fake /dev/fuse: mount and
// serve, detach and attach with replay, replacement, malformed frames, socket permissions and stale sockets.
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HolderClient } from '../../src/fuse/holder/client.js';
import { FuseHolder, type HolderDevice } from '../../src/fuse/holder/holder.js';
import { listenHolder, type HolderServer } from '../../src/fuse/holder/server.js';
import { replyBytes } from '../../src/fuse/raw/protocol.js';
import { silentLogger } from '../../src/log.js';

const log = silentLogger();

function request(opcode: number, unique: number): Buffer {
  const b = Buffer.alloc(40);
  b.writeUInt32LE(40, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(BigInt(unique), 8);
  return b;
}

function answer(req: Buffer): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(20, 0);
  req.copy(b, 8, 8, 16);
  b.writeUInt32LE(req.readUInt32LE(4), 16); // echo the opcode so the test can see who answered what
  return b;
}

function fakeKernel() {
  let onRequest: ((r: Buffer) => void) | undefined;
  const written: Buffer[] = [];
  const waiters: Array<() => void> = [];
  const device: HolderDevice = {
    mount: () => Promise.resolve(3),
    readRequests: (_fd, cb) => ((onRequest = cb), new Promise<void>(() => undefined)),
    write: (_fd, frame) => {
      written.push(replyBytes(frame));
      waiters.splice(0).forEach((w) => w());
      return true;
    },
    unmount: () => Promise.resolve(),
    connectionOf: () => Promise.resolve(undefined),
    abort: () => Promise.resolve(true),
    close: () => undefined,
  };
  const uniques = (): number[] => written.map((w) => Number(w.readBigUInt64LE(8)));
  return {
    device,
    send: (r: Buffer) => onRequest!(r),
    uniques,
    async until(n: number): Promise<void> {
      while (written.length < n) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

let server: HolderServer | undefined;
const clients: HolderClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

async function start() {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-holder-'));
  const socketPath = join(dir, 'run', 'holder.sock');
  const kernel = fakeKernel();
  const holder = new FuseHolder({ device: kernel.device, log, maxMounts: 8 });
  server = await listenHolder({ socketPath, holder, log });
  const connect = async () => {
    const c = await HolderClient.connect({ socketPath, log });
    clients.push(c);
    return c;
  };
  return { dir, socketPath, kernel, holder, connect };
}

const mountOpts = {
  id: 'L1',
  mountpoint: '/mnt/L1',
  fsname: 'ferry',
  subtype: 'ferry',
  options: ['ro'],
  meta: { layer: 'sha256:ab' },
};

describe('holder socket + HolderClient', () => {
  it('mounts, buffers requests until serve(), and carries replies back to the kernel', async () => {
    const { kernel, connect, socketPath } = await start();
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(socketPath, '..')).mode & 0o777).toBe(0o700);
    const c = await connect();
    expect(c.holderPid).toBe(process.pid);
    expect(c.inherited).toEqual([]);
    const s = await c.mount(mountOpts);
    kernel.send(request(26, 1)); // INIT arrives before the daemon is ready to serve: buffered
    await new Promise((r) => setTimeout(r, 20));
    s.serve({ handle: (r) => Promise.resolve(r.readUInt32LE(4) === 2 ? undefined : answer(r)) });
    kernel.send(request(2, 2)); // FORGET: no reply
    kernel.send(request(15, 3));
    await kernel.until(2);
    expect(kernel.uniques()).toEqual([1, 3]);
  });

  it('INIT read at once after mount(8) reaches the handler (MOUNTED and INIT in one socket chunk)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-holder-'));
    const socketPath = join(dir, 'holder.sock');
    const written: Buffer[] = [];
    const device: HolderDevice = {
      ...fakeKernel().device,
      readRequests: (_fd, cb) => (cb(request(26, 1)), new Promise<void>(() => undefined)),
      write: (_fd, frame) => (written.push(replyBytes(frame)), true),
    };
    server = await listenHolder({ socketPath, holder: new FuseHolder({ device, log, maxMounts: 1 }), log });
    const c = await HolderClient.connect({ socketPath, log });
    clients.push(c);
    const s = await c.mount(mountOpts);
    const got = new Promise<Buffer>((r) =>
      s.serve({ handle: (req) => (r(req), Promise.resolve(answer(req))) }),
    );
    expect((await got).readUInt32LE(4)).toBe(26);
  });

  it("a second client inherits the mount (with INIT) and gets the first one's unanswered requests replayed", async () => {
    const { kernel, holder, connect } = await start();
    const c1 = await connect();
    const s1 = await c1.mount(mountOpts);
    s1.serve({
      handle: (r) => (r.readUInt32LE(4) === 26 ? Promise.resolve(answer(r)) : new Promise(() => undefined)),
    });
    kernel.send(request(26, 1));
    kernel.send(request(15, 2)); // the first daemon sits on this one
    await kernel.until(1);
    let closedWith: Error | undefined | null = null;
    c1.onClose((e) => (closedWith = e));
    await c1.close(); // detach: not an onClose event
    kernel.send(request(15, 3)); // queued while nobody serves
    await new Promise((r) => setTimeout(r, 20));
    expect(holder.counts('L1')).toEqual({ queued: 1, pending: 1 });
    const c2 = await connect();
    expect(c2.inherited).toHaveLength(1);
    expect(c2.inherited[0]).toMatchObject({ id: 'L1', mountpoint: '/mnt/L1', meta: { layer: 'sha256:ab' } });
    expect(c2.inherited[0]!.init).toEqual(request(26, 1));
    const seen: number[] = [];
    c2.attach('L1').serve({
      handle: (r) => (seen.push(Number(r.readBigUInt64LE(8))), Promise.resolve(answer(r))),
    });
    await kernel.until(3);
    expect(seen).toEqual([2, 3]);
    expect(kernel.uniques()).toEqual([1, 2, 3]);
    expect(closedWith).toBeNull();
    expect(() => c2.attach('L1')).toThrow(/already attached/);
    expect(() => c2.attach('nope')).toThrow(/no mount nope/);
  });

  it('a new client replaces the old one, whose onClose fires and whose late replies are dropped', async () => {
    const { kernel, connect } = await start();
    const c1 = await connect();
    let release: () => void = () => undefined;
    const late = new Promise<void>((r) => (release = r));
    (await c1.mount(mountOpts)).serve({ handle: async (r) => (await late, answer(r)) });
    kernel.send(request(15, 5));
    const closed = new Promise<Error | undefined>((r) => c1.onClose(r));
    const c2 = await connect();
    expect((await closed)?.message).toMatch(/connection closed/);
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(kernel.uniques()).toEqual([]);
    c2.attach('L1').serve({ handle: (r) => Promise.resolve(answer(r)) });
    await kernel.until(1);
    expect(kernel.uniques()).toEqual([5]);
    await c2.unmount('L1');
    await expect(c2.unmount('L1')).rejects.toThrow(/no such mount/);
  });

  it('a malformed frame closes only that connection; the holder serves the next one', async () => {
    const { socketPath, connect, holder } = await start();
    const raw = createConnection(socketPath);
    await new Promise((r) => raw.once('connect', r));
    await new Promise((r) => raw.once('data', r)); // HELLO
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1]));
    await new Promise((r) => raw.once('close', r));
    expect(holder.connected).toBe(false);
    const c = await connect();
    await c.mount(mountOpts);
  });

  it('replaces a stale socket file but never one a live holder answers on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-holder-'));
    const stale = join(dir, 'stale.sock');
    const other = createServer();
    await new Promise<void>((r) => other.listen(stale, r));
    const holder = new FuseHolder({ device: fakeKernel().device, log, maxMounts: 1 });
    await expect(listenHolder({ socketPath: stale, holder, log })).rejects.toThrow(/already listens/);
    // A socket file nobody listens on: left behind by a killed holder.
    const { spawnSync } = await import('node:child_process');
    const leftover = join(dir, 'leftover.sock');
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(leftover)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect(statSync(leftover).isSocket()).toBe(true);
    server = await listenHolder({ socketPath: leftover, holder, log });
    const c = await HolderClient.connect({ socketPath: leftover, log });
    clients.push(c);
    await new Promise<void>((r) => other.close(() => r()));
    writeFileSync(join(dir, 'plain'), '');
    await expect(listenHolder({ socketPath: join(dir, 'plain'), holder, log })).rejects.toThrow(
      /not a socket/,
    );
  });

  it('connect fails with UnavailableError when nothing listens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-holder-'));
    await expect(HolderClient.connect({ socketPath: join(dir, 'none.sock'), log })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });
});
