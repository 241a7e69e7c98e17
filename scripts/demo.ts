// The demo: a loopback registry with a generated ~200 MB image, its index published, then a "new node" mounts
// it lazily and runs a small application start; prints time to first byte, bytes fetched and cache hits.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MediaType } from '../src/image/manifest.js';
import { silentLogger } from '../src/log.js';
import { RegistryClient } from '../src/registry/client.js';
import { parseReference } from '../src/image/reference.js';
import { gzipLayer, makeCorpus } from '../test/helpers/corpus.js';
import { FaultProxy } from '../test/helpers/fault-proxy.js';
import { ferry, ferryEnv, startMount } from '../test/helpers/ferry-cli.js';
import { pushImage } from '../test/helpers/push-image.js';
import { startRegistry } from '../test/helpers/registry.js';

const MB = 1e6;
const ms = (t0: number) => performance.now() - t0;
const fmt = (n: number) => `${(n / MB).toFixed(1)} MB`;
const say = (s: string) => process.stdout.write(`${s}\n`);

async function readSome(path: string, offset: number, length: number): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    return bytesRead;
  } finally {
    await fh.close();
  }
}

/** The "application start": a script, configs, a few hundred small files, the head of two big files. */
async function appStart(
  root: string,
): Promise<{ ttfbMs: number; totalMs: number; bytes: number; files: number }> {
  const t0 = performance.now();
  let bytes = (await readFile(join(root, 'app/start.sh'))).length;
  const ttfbMs = ms(t0);
  let files = 1;
  for (const p of ['etc/hostname', 'etc/replaced.conf', 'usr/bin/tool', 'srv/xattr-file']) {
    bytes += (await readFile(join(root, p))).length;
    files++;
  }
  const small = Array.from(
    { length: 300 },
    (_, i) => `usr/share/data/${String(Math.floor((i * 13) / 100)).padStart(3, '0')}/file-${i * 13}.dat`,
  );
  for (let i = 0; i < small.length; i += 16) {
    const sizes = await Promise.all(
      small.slice(i, i + 16).map((p) => readFile(join(root, p)).then((b) => b.length)),
    );
    bytes += sizes.reduce((a, b) => a + b, 0);
    files += sizes.length;
  }
  bytes += await readSome(join(root, 'usr/lib/big-text.txt'), 0, 4 << 20);
  bytes += await readSome(join(root, 'usr/lib/big-random.bin'), 40 << 20, 2 << 20);
  files += 2;
  return { ttfbMs, totalMs: ms(t0), bytes, files };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  say('Ferry demo: lazy mount of a generated image from a loopback registry\n');
  const registry = await startRegistry();
  const proxy = await new FaultProxy(registry.host).start();
  const client = new RegistryClient({
    log: silentLogger(),
    requestTimeoutMs: 60_000,
    maxConcurrencyPerHost: 8,
    retries: 2,
  });
  const publisher = ferryEnv();
  const node = ferryEnv();
  const target = join(node.dir, 'rootfs');
  let mount: Awaited<ReturnType<typeof startMount>> | undefined;
  try {
    let t = performance.now();
    const corpus = makeCorpus(join(work, 'src'), { smallFiles: 5000, bigFileBytes: 88 << 20 });
    const layers = corpus.map((l) => ({ data: gzipLayer(l.tar), mediaType: MediaType.ociLayerGzip }));
    const ref = `${proxy.host}/demo/app:1`;
    await pushImage(client, ref, { layers });
    const compressed = layers.reduce((a, l) => a + l.data.length, 0);
    const uncompressed = corpus.reduce((a, l) => a + l.tar.length, 0);
    say(
      `1. generated and pushed ${ref}: ${layers.length} gzip layers, ${fmt(compressed)} compressed, ` +
        `${fmt(uncompressed)} of tar, ~5200 files (${(ms(t) / 1000).toFixed(1)} s)`,
    );

    t = performance.now();
    const { stdout } = await ferry(['index', ref, '--push'], publisher);
    say(
      `2. publisher: \`ferry index --push --sign-key\` built, signed and published the layer indexes (${(ms(t) / 1000).toFixed(1)} s):\n`,
    );
    say(stdout.replace(/^/gm, '     '));

    proxy.resetStats();
    t = performance.now();
    mount = await startMount(ref, target, node);
    const mountMs = ms(t);
    const mountBytes = proxy.stats.blobBytes;
    say(
      `3. new node (empty cache): \`ferry mount\` ready in ${mountMs.toFixed(0)} ms, ` +
        `having fetched ${fmt(mountBytes)} (the published indexes)`,
    );

    const app = await appStart(target);
    const lazyBytes = proxy.stats.blobBytes;
    say(`4. application start read ${app.files} files, ${fmt(app.bytes)}:`);
    say(`     time to first byte      ${app.ttfbMs.toFixed(1)} ms`);
    say(`     working set read in     ${app.totalMs.toFixed(0)} ms`);
    say(
      `     fetched from registry   ${fmt(lazyBytes)} of ${fmt(compressed)} ` +
        `(${((100 * lazyBytes) / compressed).toFixed(1)}% of the image, indexes included)`,
    );
    say(`     range requests          ${proxy.stats.rangeRequests}`);

    const again = await appStart(target);
    say(
      `5. second start on this node: ${again.totalMs.toFixed(0)} ms, ` +
        `${fmt(proxy.stats.blobBytes - lazyBytes)} more from the registry`,
    );

    t = performance.now();
    const image = await client.resolve(parseReference(ref));
    const extract = join(work, 'full');
    rmSync(extract, { recursive: true, force: true });
    await mkdir(extract, { recursive: true });
    for (const l of image.manifest.layers) {
      const blob = await client.fetchBlob(image.ref, l.digest, 1 << 30);
      await new Promise<void>((resolve, reject) => {
        const tar = execFile('tar', ['-xzf', '-', '-C', extract], (e) =>
          e === null ? resolve() : reject(new Error(`tar -x failed: ${e.message}`)),
        );
        tar.stdin?.end(blob);
      });
    }
    const fullMs = ms(t);
    say(
      `6. for comparison, a plain full pull + extract of the same image took ${fullMs.toFixed(0)} ms; ` +
        `lazy mount + application start took ${(mountMs + app.totalMs).toFixed(0)} ms ` +
        `(${((mountMs + app.totalMs) / fullMs).toFixed(2)}x)`,
    );
  } finally {
    if (mount) {
      await ferry(['umount', target], node).catch(() => undefined);
      const exit = await mount.exited;
      const served = (exit.unmounted?.['served'] ?? {}) as Record<string, { chunks: number; bytes: number }>;
      say(
        `7. unmounted. chunks served: memory ${served['memory']?.chunks ?? 0}, disk ${served['disk']?.chunks ?? 0}, ` +
          `registry ${served['origin']?.chunks ?? 0} (${fmt(served['origin']?.bytes ?? 0)} uncompressed)`,
      );
    }
    await client.close();
    await proxy.stop();
    await registry.stop();
    for (const d of [work, publisher.dir, node.dir]) rmSync(d, { recursive: true, force: true });
  }
}

await main();
