// The holder's snapshots socket relay between real HTTP/2 peers (node:http2 as containerd and as a stand-in
// daemon) on real unix sockets: requests pass; a connection made while no daemon listens gets its handshake at
// once and its request served once a daemon listens; a daemon that dies closes its clients and the next one
// serves their reconnections; held connections are bounded in count and time; non-HTTP/2 clients are closed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { connect as h2connect, createServer as h2server, type ClientHttp2Session } from 'node:http2';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withoutFirstSettingsAck } from '../../src/fuse/holder/h2-preface.js';
import { SocketRelay } from '../../src/fuse/holder/socket-relay.js';
import { silentLogger } from '../../src/log.js';

const log = silentLogger();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function paths() {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-relay-'));
  return { socketPath: join(dir, 'snapshotter.sock'), targetPath: join(dir, 'snapshotter-daemon.sock') };
}

/** A stand-in daemon: an HTTP/2 server answering every request with its name. */
async function standIn(path: string, name: string): Promise<{ kill(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = h2server((_req, res) => res.end(name));
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(path, r));
  const kill = async () => {
    for (const s of sockets) s.destroy(); // as kill -9: every connection ends at once
    await new Promise<void>((r) => server.close(() => r()));
    await unlink(path).catch(() => undefined);
  };
  cleanups.push(() => (server.listening ? kill() : undefined));
  return { kill };
}

async function startRelay(p: { socketPath: string; targetPath: string }, extra = {}): Promise<SocketRelay> {
  const relay = new SocketRelay({ ...p, mode: 0o660, log, retryMs: 20, ...extra });
  await relay.start();
  cleanups.push(() => relay.close());
  return relay;
}

interface Client {
  session: ClientHttp2Session;
  /** The server's SETTINGS arrived: the handshake grpc-go waits for (about a second) is done. */
  handshaken(): boolean;
  closed(): boolean;
  get(): Promise<string>;
}

function client(path: string): Client {
  let settings = false;
  let closed = false;
  const session = h2connect('http://localhost', { createConnection: () => createConnection(path) });
  session.on('remoteSettings', () => (settings = true));
  session.on('error', () => undefined);
  session.on('close', () => (closed = true));
  cleanups.push(() => session.destroy());
  return {
    session,
    handshaken: () => settings,
    closed: () => closed,
    get: () =>
      new Promise((resolve, reject) => {
        const req = session.request({ ':path': '/' });
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => (body += d));
        req.on('end', () => resolve(body));
        req.on('error', reject);
        req.end();
      }),
  };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('SocketRelay', () => {
  it('relays HTTP/2 to a running daemon, with the socket at the given mode', async () => {
    const p = paths();
    await standIn(p.targetPath, 'd1');
    await startRelay(p);
    expect(statSync(p.socketPath).mode & 0o777).toBe(0o660);
    const c = client(p.socketPath);
    expect(await c.get()).toBe('d1');
    expect(await c.get()).toBe('d1');
  });

  it('answers the handshake of a connection made while no daemon runs and serves it once one listens', async () => {
    const p = paths();
    const relay = await startRelay(p);
    const c = client(p.socketPath);
    const answer = c.get();
    await until(() => c.handshaken() && relay.counts().held === 1, 1000);
    let got: string | undefined;
    void answer.then((a) => (got = a));
    await new Promise((r) => setTimeout(r, 1500)); // longer than grpc-go waits for a handshake
    expect(got).toBeUndefined();
    expect(c.closed()).toBe(false);
    await standIn(p.targetPath, 'd1');
    expect(await answer).toBe('d1');
    expect(relay.counts()).toEqual({ held: 0, spliced: 1 });
  });

  it('closes clients of a daemon that died; their reconnections wait for and reach the next daemon', async () => {
    const p = paths();
    const d1 = await standIn(p.targetPath, 'd1');
    await startRelay(p);
    const a = client(p.socketPath);
    expect(await a.get()).toBe('d1');
    await d1.kill();
    await until(() => a.closed());
    writeFileSync(p.targetPath, ''); // something stale where the daemon's socket was: still "no daemon"
    const b = client(p.socketPath);
    const answer = b.get();
    await until(() => b.handshaken());
    await new Promise((r) => setTimeout(r, 100));
    await unlink(p.targetPath);
    await standIn(p.targetPath, 'd2');
    expect(await answer).toBe('d2');
  });

  it('bounds the connections it holds, in count and in time', async () => {
    const p = paths();
    const relay = await startRelay(p, { maxHeld: 2, holdMs: 500 });
    const cs = [client(p.socketPath), client(p.socketPath), client(p.socketPath)];
    await until(() => cs.filter((c) => c.closed()).length === 1 && relay.counts().held === 2);
    await until(() => cs.every((c) => c.closed()), 3000);
    expect(relay.counts().held).toBe(0);
  });

  it('closes a client that does not speak HTTP/2', async () => {
    const p = paths();
    await standIn(p.targetPath, 'd1');
    await startRelay(p);
    const s = createConnection(p.socketPath);
    s.on('error', () => undefined);
    s.resume();
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise<void>((r) => s.once('close', () => r()));
  });

  it('refuses a path something listens on and replaces a stale socket', async () => {
    const p = paths();
    await standIn(p.socketPath, 'other');
    await expect(startRelay(p)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const q = paths();
    // A crashed listener's socket file: bound, never unlinked (Node's close would unlink it).
    const bind = 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])';
    execFileSync('python3', ['-c', bind, q.socketPath]);
    expect(statSync(q.socketPath).isSocket()).toBe(true);
    await standIn(q.targetPath, 'd1');
    await startRelay(q);
    expect(await client(q.socketPath).get()).toBe('d1');
  });
});

describe('withoutFirstSettingsAck', () => {
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  const frame = (type: number, flags: number, payload = Buffer.alloc(0)) => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    return Buffer.concat([h, payload]);
  };
  it('removes exactly the first SETTINGS ACK, waits for partial frames, refuses other protocols', () => {
    const settings = frame(4, 0, Buffer.alloc(6, 1));
    const window = frame(8, 0, Buffer.alloc(4, 2));
    const ack = frame(4, 1);
    const headers = frame(1, 4, Buffer.from('abc'));
    const all = Buffer.concat([preface, settings, window, ack, headers, ack]);
    expect(withoutFirstSettingsAck(all)).toEqual(Buffer.concat([preface, settings, window, headers, ack]));
    expect(withoutFirstSettingsAck(Buffer.concat([preface, settings, window]))).toBeUndefined();
    expect(withoutFirstSettingsAck(Buffer.concat([preface, settings.subarray(0, 12)]))).toBeUndefined();
    expect(withoutFirstSettingsAck(preface.subarray(0, 10))).toBeUndefined();
    expect(withoutFirstSettingsAck(Buffer.from('GET / HTTP/1.1\r\n'))).toBeNull();
    const big = frame(0, 0, Buffer.alloc(300 * 1024));
    expect(withoutFirstSettingsAck(Buffer.concat([preface, settings, big]))).toBeNull();
  });
});
