// `ferry index <ref>`: builds or loads every layer's index, prints a table (or JSON), optionally publishes.
import { parseReference } from '../image/reference.js';
import type { LayerIndex } from '../image/layer-index.js';
import { publishBoundIndex, publishIndexes, signArtifact } from '../index/publish.js';
import { keyId, loadSigningKey } from '../index/signature.js';
import { describeRoot } from '../index/trust.js';
import { InvalidArgumentError } from '../errors.js';
import type { ProvidedIndex } from '../index/provider.js';
import { createContext } from '../node/context.js';
import { formatBytes, formatRate, Progress, shortDigest, table } from './format.js';

export interface IndexCommandOptions {
  json?: boolean;
  push?: boolean;
  signKey?: string;
  bind?: string;
  rebuild?: boolean;
  config?: string;
  /** Chunk size of the indexes built now (implies --rebuild: a cached index has the size it was built with). */
  chunkSize?: number;
}

function layerSummary(p: ProvidedIndex, withFiles: boolean): Record<string, unknown> {
  const ix = p.index;
  const buildMs = p.origin === 'built' || p.origin === 'toc' ? p.durationMs : ix.build.durationMs;
  const files = ix.entries.filter((e) => e.type === 'file');
  return {
    digest: ix.layerDigest,
    mediaType: ix.mediaType,
    format: ix.format,
    origin: p.origin,
    trust: describeRoot(p.root),
    compressedSize: ix.compressedSize,
    uncompressedSize: ix.uncompressedSize,
    entries: ix.entries.length,
    files: files.length,
    chunks: ix.chunks.length,
    checkpoints: ix.checkpoints.length,
    buildMs,
    uncompressedMBps: buildMs > 0 ? Number((ix.uncompressedSize / 1e6 / (buildMs / 1000)).toFixed(1)) : null,
    ...(withFiles ? { files_: fileList(ix) } : {}),
  };
}

function fileList(ix: LayerIndex): Array<Record<string, unknown>> {
  return ix.entries.map((e) => ({
    path: `/${e.path}`,
    type: e.type,
    size: e.size,
    mode: `0${e.mode.toString(8)}`,
    ...(e.linkTarget !== undefined ? { linkTarget: e.linkTarget } : {}),
    ...(e.digest !== undefined ? { sha256: e.digest } : {}),
  }));
}

export async function runIndex(refText: string, opts: IndexCommandOptions): Promise<void> {
  const ref = parseReference(refText);
  if ((opts.signKey !== undefined || opts.bind !== undefined) && opts.push !== true)
    throw new InvalidArgumentError('--sign-key and --bind publish: use them with --push');
  // Read the key before any work: a wrong path should not cost a whole index build.
  const signKey = opts.signKey !== undefined ? await loadSigningKey(opts.signKey) : undefined;
  const ctx = await createContext({
    configPath: opts.config,
    logLevel: 'warn',
    indexChunkSizeBytes: opts.chunkSize,
  });
  const progress = new Progress();
  try {
    const image = await ctx.registry.resolve(ref);
    const layers = image.manifest.layers;
    const provided = await ctx.provider.forImage(image, {
      rebuild: opts.rebuild === true || opts.chunkSize !== undefined,
      onProgress: (layer, n) => {
        const i = layers.indexOf(layer) + 1;
        progress.update(
          `layer ${i}/${layers.length} ${shortDigest(layer.digest)} ${formatBytes(n)}`,
          n / layer.size,
        );
      },
    });
    progress.done();
    let artifact: string | undefined;
    let signedBy: string | undefined;
    let bound: string | undefined;
    if (opts.push === true) {
      const published = await publishIndexes(
        ctx.registry,
        image,
        provided.map((p) => p.index),
      );
      artifact = published.digest;
      if (signKey !== undefined) {
        await signArtifact(ctx.registry, image, published.digest, signKey);
        signedBy = keyId(signKey);
      }
      if (opts.bind !== undefined) {
        const digest = await publishBoundIndex(ctx.registry, image, published, opts.bind);
        bound = `${ref.registry}/${ref.repository}:${opts.bind}@${digest}`;
      }
    }
    if (opts.json === true) {
      const out = {
        ref: ref.toString(),
        manifestDigest: image.manifestDigest,
        layers: provided.map((p) => {
          const { files_, ...rest } = layerSummary(p, true);
          return { ...rest, fileList: files_ };
        }),
        ...(artifact !== undefined ? { artifact } : {}),
        ...(signedBy !== undefined ? { signedBy } : {}),
        ...(bound !== undefined ? { bound } : {}),
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    process.stdout.write(`${ref.toString()}  manifest ${image.manifestDigest}\n\n`);
    const rows = provided.map((p, i) => {
      const s = layerSummary(p, false);
      return [
        `${i + 1} ${shortDigest(p.index.layerDigest)}`,
        p.index.format,
        p.origin,
        describeRoot(p.root),
        formatBytes(p.index.compressedSize),
        formatBytes(p.index.uncompressedSize),
        String(s['files']),
        String(p.index.chunks.length),
        `${String(s['buildMs'])} ms`,
        formatRate(p.index.uncompressedSize, s['buildMs'] as number),
      ];
    });
    process.stdout.write(
      `${table(['layer', 'format', 'source', 'trust', 'compressed', 'uncompressed', 'files', 'chunks', 'build', 'rate'], rows)}\n`,
    );
    if (artifact !== undefined) process.stdout.write(`\nindexes published as ${artifact}\n`);
    if (signedBy !== undefined) process.stdout.write(`signed with key ${signedBy}\n`);
    if (bound !== undefined) process.stdout.write(`bound image index: ${bound}\n`);
  } finally {
    progress.done();
    await ctx.close();
  }
}
