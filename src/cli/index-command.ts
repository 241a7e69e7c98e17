// `ferry index <ref>`: builds or loads every layer's index, prints a table (or JSON), optionally publishes.
import { parseReference } from '../image/reference.js';
import type { LayerIndex } from '../image/layer-index.js';
import { publishIndexes } from '../index/publish.js';
import type { ProvidedIndex } from '../index/provider.js';
import { createContext } from './context.js';
import { formatBytes, formatRate, Progress, shortDigest, table } from './format.js';

export interface IndexCommandOptions {
  json?: boolean;
  push?: boolean;
  rebuild?: boolean;
  config?: string;
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
  const ctx = await createContext({ configPath: opts.config, logLevel: 'warn' });
  const progress = new Progress();
  try {
    const image = await ctx.registry.resolve(ref);
    const layers = image.manifest.layers;
    const provided = await ctx.provider.forImage(image, {
      rebuild: opts.rebuild === true,
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
    if (opts.push === true) {
      artifact = await publishIndexes(
        ctx.registry,
        image,
        provided.map((p) => p.index),
      );
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
        formatBytes(p.index.compressedSize),
        formatBytes(p.index.uncompressedSize),
        String(s['files']),
        String(p.index.chunks.length),
        `${String(s['buildMs'])} ms`,
        formatRate(p.index.uncompressedSize, s['buildMs'] as number),
      ];
    });
    process.stdout.write(
      `${table(['layer', 'format', 'source', 'compressed', 'uncompressed', 'files', 'chunks', 'build', 'rate'], rows)}\n`,
    );
    if (artifact !== undefined) process.stdout.write(`\nindexes published as ${artifact}\n`);
  } finally {
    progress.done();
    await ctx.close();
  }
}
