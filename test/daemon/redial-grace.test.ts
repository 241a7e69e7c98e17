// Readiness waits until a containerd started before the snapshots socket can have redialled it: a socket bound
// just now holds readiness back for the grace, one bound earlier (the holder's, systemd's) does not.
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CONTAINERD_REDIAL_MS, socketSettled, socketSettleMs } from '../../src/daemon/redial-grace.js';

let server: Server | undefined;
afterEach(() => server?.close());

async function listenAt(): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'grace-')), 's.sock');
  server = createServer();
  await new Promise<void>((r) => server!.listen(path, r));
  return path;
}

describe('socketSettleMs', () => {
  it('asks a fresh socket to wait out containerd’s reconnect backoff, and more than its 3.6 s', async () => {
    const path = await listenAt();
    const wait = await socketSettleMs(path, CONTAINERD_REDIAL_MS);
    expect(wait).toBeGreaterThan(CONTAINERD_REDIAL_MS - 2_000);
    expect(wait).toBeLessThanOrEqual(CONTAINERD_REDIAL_MS);
    expect(CONTAINERD_REDIAL_MS).toBeGreaterThan(3_600);
  });

  it('counts from when the socket appeared: none left for one bound long ago, the rest for a recent one', async () => {
    const path = await listenAt();
    const now = Date.now();
    expect(await socketSettleMs(path, 5_000, now + 60_000)).toBe(0);
    const left = await socketSettleMs(path, 5_000, now + 3_000);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(2_000);
  });

  it('never waits for a missing socket, nor longer than the grace for a clock that went back', async () => {
    const path = await listenAt();
    expect(await socketSettleMs(join(tmpdir(), 'no-such.sock'), 5_000)).toBe(0);
    expect(await socketSettleMs(path, 5_000, Date.now() - 3_600_000)).toBe(5_000);
  });

  it('socketSettled resolves after the rest of the grace', async () => {
    const path = await listenAt();
    const t0 = performance.now();
    const waited = await socketSettled(path, 300);
    expect(waited).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(waited - 5);
  });
});
