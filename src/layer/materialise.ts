// Materialising a layer: its tree written out as a plain directory in overlayfs's lower-layer format (files with
// their verified bytes, links, devices, whiteouts as char 0/0, opaque dirs as trusted.overlay.opaque), so new
// containers can use it without FUSE. Written into a temp dir, checked against the tree, then renamed into place.
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rename, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { chunksCovering } from '../image/layer-index.js';
import { FerryError, FormatError, isFerryError } from '../errors.js';
import type { ChunkSource } from '../source/chunk-source.js';
import type { LayerNode, LayerTree } from './layer-tree.js';
import { makeSpecial, setXattrs } from './materialise-special.js';

export interface MaterialiseOptions {
  tree: LayerTree;
  /** Verified chunk bytes (the node's chunk service): nothing unverified is written. */
  source: ChunkSource;
  /** The final directory; must not exist yet (a stale one is replaced). */
  dest: string;
  /** Fetch missing chunks as background work (true), or as prefetch that a reader is about to need. */
  background?: boolean;
  /** Parallel file writes (default 8). */
  concurrency?: number;
  signal?: AbortSignal | undefined;
}

export interface MaterialiseResult {
  files: number;
  bytes: number;
  entries: number;
}

const OPAQUE_XATTR = 'trusted.overlay.opaque';
/** Chunks of one file fetched ahead of the one being written. */
const LOOKAHEAD_CHUNKS = 4;

/**
 * Runs `fn` over `items` with at most `n` in flight; the first failure stops new work and is thrown once every
 * worker has stopped (so nothing still writes when the caller removes the temp dir).
 */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failure !== undefined) throw failure.e;
}

/** Chunks by number, the few most recent kept: files are written in layer order, so neighbours share chunks. */
class ChunkWindow {
  private readonly recent = new Map<number, Promise<Buffer>>();
  constructor(
    private readonly o: MaterialiseOptions,
    private readonly keep: number,
  ) {}

  get(chunk: number): Promise<Buffer> {
    let p = this.recent.get(chunk);
    if (p === undefined) {
      const req = { index: this.o.tree.index, chunk, priority: 'prefetch' as const };
      p = this.o.source.fetch(this.o.background === true ? { ...req, background: true } : req, this.o.signal);
      this.recent.set(chunk, p);
      p.catch(() => this.recent.delete(chunk));
      if (this.recent.size > this.keep) this.recent.delete(this.recent.keys().next().value!);
    }
    return p;
  }
}

async function writeFileNode(path: string, node: LayerNode, chunks: ChunkWindow, tree: LayerTree) {
  const fh = await open(path, 'wx', 0o600);
  try {
    if (node.size === 0) return;
    if (node.dataOffset === undefined)
      throw new FormatError(`file ${node.path} in layer ${tree.index.layerDigest} has no data offset`);
    const all = tree.index.chunks;
    const start = node.dataOffset;
    const end = start + node.size;
    let at = start;
    const ids = chunksCovering(all, start, node.size);
    for (const [i, id] of ids.entries()) {
      const c = all[id]!;
      if (c.offset > at) break;
      // A big file's next chunks are decoded (or read from the cache) while this one is written.
      for (const ahead of ids.slice(i + 1, i + 1 + LOOKAHEAD_CHUNKS))
        void chunks.get(ahead).catch(() => undefined);
      const bytes = await chunks.get(id);
      const to = Math.min(end, c.offset + c.size);
      await fh.write(bytes.subarray(at - c.offset, to - c.offset), 0, to - at, at - start);
      at = to;
    }
    if (at < end)
      throw new FormatError(
        `layer ${tree.index.layerDigest} index has no chunk for byte ${at} of ${node.path}`,
      );
  } finally {
    await fh.close();
  }
}

async function verify(root: string, entries: ReadonlyArray<[string, LayerNode]>): Promise<void> {
  await pool(entries, 16, async ([path, node]) => {
    const st = await lstat(join(root, path));
    const ok =
      node.type === 'dir'
        ? st.isDirectory()
        : node.type === 'file'
          ? st.isFile() && st.size === node.size
          : node.type === 'symlink'
            ? st.isSymbolicLink() && st.size === node.size
            : node.type === 'fifo'
              ? st.isFIFO()
              : node.type === 'block'
                ? st.isBlockDevice()
                : st.isCharacterDevice();
    if (!ok) throw new FerryError('INTERNAL', `materialised ${path} does not match the layer (${node.type})`);
  });
}

/** The chunks that hold file bytes (a materialised layer needs no others: headers and padding are not written). */
export function dataChunks(tree: LayerTree): Set<number> {
  const out = new Set<number>();
  for (const [, node] of tree.paths()) {
    if (node.type !== 'file' || node.size === 0 || node.dataOffset === undefined) continue;
    for (const id of chunksCovering(tree.index.chunks, node.dataOffset, node.size)) out.add(id);
  }
  return out;
}

/** Writes the layer; throws (RESOURCE_EXHAUSTED when the disk is full) and leaves nothing behind on failure. */
export async function materialiseLayer(o: MaterialiseOptions): Promise<MaterialiseResult> {
  const tmp = `${o.dest}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  try {
    const r = await writeTree(o, tmp);
    await rm(o.dest, { recursive: true, force: true });
    await rename(tmp, o.dest);
    return r;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT')
      throw new FerryError('RESOURCE_EXHAUSTED', `disk full materialising ${o.dest}: ${String(e)}`, {
        cause: e,
      });
    throw isFerryError(e)
      ? e
      : new FerryError('INTERNAL', `cannot materialise ${o.dest}: ${String(e)}`, { cause: e });
  }
}

async function writeTree(o: MaterialiseOptions, root: string): Promise<MaterialiseResult> {
  const { tree, signal } = o;
  const entries = [...tree.paths()]
    .filter(([p]) => p !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // The first name of each inode is where it is written; later names of a file are hardlinks to it.
  const primary = new Map<number, string>();
  const links: Array<[string, string]> = [];
  for (const [path, node] of entries) {
    const first = primary.get(node.ino);
    if (first === undefined) primary.set(node.ino, path);
    else links.push([path, first]);
  }
  const own = entries.filter(([path, node]) => primary.get(node.ino) === path);
  const at = (p: string) => join(root, p);

  await mkdir(root, { mode: 0o700 });
  // Parents sort before their children, so one pass in order makes every directory.
  for (const [path, node] of own) {
    signal?.throwIfAborted();
    if (node.type === 'dir') await mkdir(at(path), { mode: 0o700 });
  }
  const files = own.filter(([, n]) => n.type === 'file');
  files.sort(([, a], [, b]) => (a.dataOffset ?? 0) - (b.dataOffset ?? 0));
  const concurrency = o.concurrency ?? 8;
  // Few chunks held at once (each up to the chunk size): the daemon shares its memory with every mount.
  const chunks = new ChunkWindow(o, concurrency + 2 * LOOKAHEAD_CHUNKS);
  let bytes = 0;
  await pool(files, concurrency, async ([path, node]) => {
    signal?.throwIfAborted();
    await writeFileNode(at(path), node, chunks, tree);
    bytes += node.size;
  });
  await pool(
    own.filter(([, n]) => n.type !== 'file' && n.type !== 'dir'),
    concurrency,
    async ([path, node]) => {
      if (node.type === 'symlink') await symlink(node.linkTarget ?? '', at(path));
      else if (node.type !== 'file' && node.type !== 'dir')
        await makeSpecial(
          at(path),
          { type: node.type, devMajor: node.devMajor, devMinor: node.devMinor },
          signal,
        );
    },
  );
  for (const [path, target] of links) await link(at(target), at(path));

  // Owner before mode (chown clears setuid bits), both before xattrs (chown drops security.capability), times
  // last, directories' deepest first (their children are done by then).
  const withRoot: Array<[string, LayerNode]> = [['', tree.root], ...own];
  await pool(withRoot, concurrency, async ([path, node]) => {
    await lchown(at(path), node.uid, node.gid);
    if (node.type !== 'symlink') await chmod(at(path), node.mode);
  });
  const xattrs = new Map<string, ReadonlyMap<string, Buffer>>();
  for (const [path, node] of withRoot) {
    if (node.xattrs.size === 0 && !node.opaque) continue;
    const attrs = new Map(node.xattrs);
    if (node.opaque) attrs.set(OPAQUE_XATTR, Buffer.from('y'));
    xattrs.set(at(path), attrs);
  }
  await setXattrs(`${root}.xattrs`, xattrs, signal).finally(() => rm(`${root}.xattrs`, { force: true }));
  const setTime = (path: string, node: LayerNode) =>
    lutimes(at(path), node.mtimeMs / 1000, node.mtimeMs / 1000);
  await pool(
    own.filter(([, n]) => n.type !== 'dir'),
    concurrency,
    ([path, node]) => setTime(path, node),
  );
  await verify(root, entries);
  const dirs = withRoot.filter(([, n]) => n.type === 'dir');
  dirs.sort(([a], [b]) => (b === '' ? -1 : b.split('/').length) - (a === '' ? -1 : a.split('/').length));
  for (const [path, node] of dirs) await setTime(path, node);
  return { files: files.length, bytes, entries: entries.length };
}
