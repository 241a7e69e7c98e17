// `ferry mount` of an image holding a setuid-root file and a character device: by default every mount it makes
// (each layer's FUSE mount and the overlay) is nosuid,nodev in /proc/self/mountinfo, the device cannot be
// opened, and its work dir (the layer mount points) is 0700; with --allow-suid-dev, suid and dev are back.
import { open, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/manifest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { gzipLayer } from '../helpers/corpus.js';
import { ferry, ferryEnv, startMount } from '../helpers/ferry-cli.js';
import { pushImage } from '../helpers/push-image.js';
import { startRegistry, type TestRegistry, testRegistryClient } from '../helpers/registry.js';

let registry: TestRegistry;
let client: RegistryClient;
let ref: string;

async function layer(
  entries: Array<Partial<tarStream.Header> & { name: string; data?: Buffer }>,
): Promise<Buffer> {
  const pack = tarStream.pack();
  const parts: Buffer[] = [];
  pack.on('data', (b: unknown) => parts.push(b as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const { data, ...h } of entries) pack.entry(h, data ?? Buffer.alloc(0));
  pack.finalize();
  await done;
  return gzipLayer(Buffer.concat(parts));
}

/** Per-mount options (mountinfo field 6) of every mount at or below `dirs`, by mount point. */
async function mountOptions(dirs: readonly string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const f = line.split(' ');
    const point = f[4]?.replace(/\\040/g, ' ');
    if (point === undefined || !dirs.some((d) => point === d || point.startsWith(`${d}/`))) continue;
    out.set(point, f[5]!.split(','));
  }
  return out;
}

beforeAll(async () => {
  registry = await startRegistry();
  client = testRegistryClient();
  const base = await layer([
    { name: 'bin', type: 'directory', mode: 0o755 },
    { name: 'bin/rootshell', mode: 0o4755, uid: 0, gid: 0, data: Buffer.from('#!/bin/sh\nid\n') },
  ]);
  const top = await layer([
    { name: 'dev', type: 'directory', mode: 0o755 },
    { name: 'dev/mem-like', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'hello.txt', mode: 0o644, data: Buffer.from('hello\n') },
  ]);
  ref = `${registry.host}/suid:1`;
  await pushImage(client, ref, {
    layers: [
      { data: base, mediaType: MediaType.ociLayerGzip },
      { data: top, mediaType: MediaType.ociLayerGzip },
    ],
  });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await registry?.stop();
});

async function mountAndInspect(extraArgs: string[]) {
  const env = ferryEnv();
  const target = join(env.dir, 'rootfs');
  const m = await startMount(ref, target, env, 120_000, extraArgs);
  try {
    const layers = (m.mounted['layers'] as Array<{ mountpoint: string }>).map((l) => l.mountpoint);
    expect(layers).toHaveLength(2);
    const workDir = dirname(layers[0]!);
    const options = await mountOptions([target, workDir]);
    const mode = (await stat(join(target, 'bin/rootshell'))).mode & 0o7777;
    const device = await open(join(target, 'dev/mem-like'), 'r').then(
      async (fh) => (await fh.close(), 'opened'),
      (e: unknown) => (e as NodeJS.ErrnoException).code,
    );
    return {
      options,
      points: [target, ...layers],
      mode,
      device,
      workDirMode: (await stat(workDir)).mode & 0o777,
      scratchMode: (await stat(dirname(workDir))).mode & 0o777,
    };
  } finally {
    await ferry(['umount', target], env);
    await m.exited;
  }
}

describe('ferry mount of an image with a setuid file and a device node', () => {
  it('is nosuid,nodev on every mount it makes, with a 0700 work dir', async () => {
    const r = await mountAndInspect([]);
    expect([...r.options.keys()].sort()).toEqual([...r.points].sort());
    for (const [point, opts] of r.options) {
      expect(opts, point).toContain('nosuid');
      expect(opts, point).toContain('nodev');
    }
    expect(r.mode).toBe(0o4755); // the bit is shown as the image has it, and grants nothing
    expect(r.device).toBe('EACCES'); // nodev: even root cannot open the image's device node
    expect(r.workDirMode).toBe(0o700);
    expect(r.scratchMode).toBe(0o700);
  });

  it('keeps suid and dev with --allow-suid-dev', async () => {
    const r = await mountAndInspect(['--allow-suid-dev']);
    expect([...r.options.keys()].sort()).toEqual([...r.points].sort());
    for (const [point, opts] of r.options) {
      expect(opts, point).not.toContain('nosuid');
      expect(opts, point).not.toContain('nodev');
    }
    expect(r.device).toBe('opened'); // 1:3 is /dev/null
    expect(r.workDirMode).toBe(0o700);
  });
});
