// The start set: without a trace, the files nearly every start of an image reads — its entrypoint (and the
// files its command names), the `#!` or ELF interpreter, the shared libraries it needs — as ordered chunks
// within a byte budget. Heads are read as the walk goes (through `fetch`, so they count as prefetched).
import { basename } from 'node:path/posix';
import type { Digest } from '../image/digest.js';
import {
  ELF_HEAD_BYTES,
  neededNames,
  parseElfDynamic,
  parseElfHead,
  parseShebang,
  type FileRange,
} from '../image/elf.js';
import type { RunConfig } from '../image/image-config.js';
import { chunksCovering, type LayerIndex } from '../image/layer-index.js';
import { MergedLookup, type MergedHit } from '../layer/merged-lookup.js';
import type { Logger } from '../log.js';
import type { ChunkRequest } from '../source/chunk-source.js';

/** A big file contributes its first this many bytes (a start reads its headers and hot code, not all of it). */
export const START_SET_FILE_BYTES = 4 * 1024 * 1024;
/** Library search order of the dynamic loaders (glibc's trusted dirs, Debian multiarch, musl). */
const LIB_DIRS = [
  '/lib',
  '/usr/lib',
  '/lib64',
  '/usr/lib64',
  '/lib/x86_64-linux-gnu',
  '/usr/lib/x86_64-linux-gnu',
  '/lib/aarch64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
];
/** ELF levels followed: the binary's libraries (1) and theirs (2). */
const MAX_LIB_DEPTH = 2;
/** Command arguments looked at for files the command names (a script, a jar, a config). */
const MAX_NAMED_ARGS = 4;

export type StartRole = 'entrypoint' | 'interpreter' | 'library' | 'named';

export interface StartFile {
  readonly path: string;
  readonly role: StartRole;
  /** Bytes of the file's chunks planned (shared chunks are counted once, with the first file). */
  readonly bytes: number;
}

export interface StartSet {
  readonly files: readonly StartFile[];
  /** In order: entrypoint, interpreter, libraries, named files. */
  readonly chunks: readonly ChunkRequest[];
  readonly bytes: number;
}

export interface StartSetOptions {
  /** Bottom layer first. */
  indexes: readonly LayerIndex[];
  run: RunConfig;
  budgetBytes: number;
  /** Fetches one chunk of the set (it stays planned: the prefetcher will not fetch it again). */
  fetch: (req: ChunkRequest) => Promise<Buffer>;
  log: Logger;
}

interface Walk {
  readonly hit: MergedHit;
  readonly role: StartRole;
  readonly depth: number;
}

class Planner {
  readonly files: StartFile[] = [];
  readonly chunks: ChunkRequest[] = [];
  bytes = 0;
  full = false;
  private readonly planned = new Set<Digest>();
  private readonly seenFiles = new Set<string>();

  constructor(private readonly budgetBytes: number) {}

  /** Adds a file's chunks (whole, or its first START_SET_FILE_BYTES); false when seen or out of budget. */
  addFile(hit: MergedHit, role: StartRole): boolean {
    const key = `${hit.layer}:${hit.entry.dataOffset ?? hit.path}`;
    if (this.full || this.seenFiles.has(key)) return false;
    this.seenFiles.add(key);
    const before = this.bytes;
    this.addRange(hit, { offset: 0, size: Math.min(hit.entry.size, START_SET_FILE_BYTES) });
    this.files.push({ path: `/${hit.path}`, role, bytes: this.bytes - before });
    return !this.full;
  }

  /** Plans the chunks of a range of a file; false when the budget stops it. */
  addRange(hit: MergedHit, r: FileRange): boolean {
    const start = hit.entry.dataOffset;
    if (start === undefined) return true;
    const end = Math.min(r.offset + r.size, hit.entry.size);
    for (const i of chunksCovering(hit.index.chunks, start + r.offset, end - r.offset)) {
      const c = hit.index.chunks[i]!;
      if (this.planned.has(c.digest)) continue;
      // Order matters more than packing: once the budget is hit, nothing later is squeezed in.
      if (this.full || this.bytes + c.size > this.budgetBytes) {
        this.full = true;
        return false;
      }
      this.planned.add(c.digest);
      this.bytes += c.size;
      this.chunks.push({ index: hit.index, chunk: i, priority: 'prefetch' });
    }
    return true;
  }
}

/** Resolves the start set. Never throws: a file that cannot be read or parsed ends the walk there. */
export async function resolveStartSet(o: StartSetOptions): Promise<StartSet> {
  const plan = new Planner(o.budgetBytes);
  const lookup = new MergedLookup(o.indexes);
  const env = new Map(o.run.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const where = { pathEnv: env.get('PATH'), cwd: o.run.workingDir };
  const find = (cmd: string) =>
    lookup.which(cmd, {
      cwd: where.cwd,
      ...(where.pathEnv !== undefined ? { pathEnv: where.pathEnv } : {}),
    });

  /** Bytes [r.offset, r.offset + r.size) of a file, fetched through the set (planned first, within budget). */
  const read = async (hit: MergedHit, r: FileRange): Promise<Buffer | undefined> => {
    const start = hit.entry.dataOffset;
    const end = Math.min(r.offset + r.size, hit.entry.size);
    if (start === undefined || end <= r.offset || !plan.addRange(hit, r)) return undefined;
    const parts: Buffer[] = [];
    for (const i of chunksCovering(hit.index.chunks, start + r.offset, end - r.offset)) {
      const c = hit.index.chunks[i]!;
      const bytes = await o.fetch({ index: hit.index, chunk: i, priority: 'prefetch' });
      const from = Math.max(0, start + r.offset - c.offset);
      const to = Math.min(c.size, start + end - c.offset);
      parts.push(bytes.subarray(from, to));
    }
    return Buffer.concat(parts);
  };

  const findLib = (name: string): MergedHit | undefined => {
    if (name.startsWith('/')) return find(name);
    for (const dir of LIB_DIRS) {
      const hit = find(`${dir}/${name}`);
      if (hit !== undefined) return hit;
    }
    return undefined;
  };

  /** What a file leads to: its `#!` interpreter, or its ELF interpreter and needed libraries. */
  const next = async (w: Walk): Promise<Walk[]> => {
    const head = await read(w.hit, { offset: 0, size: ELF_HEAD_BYTES });
    if (head === undefined) return [];
    const bang = parseShebang(head);
    if (bang !== undefined) {
      // `#!/usr/bin/env python3` runs python3 found through PATH.
      const target =
        basename(bang.interpreter) === 'env' && bang.arg !== undefined
          ? find(bang.arg.split(' ')[0]!)
          : find(bang.interpreter);
      return target === undefined ? [] : [{ hit: target, role: 'interpreter', depth: w.depth }];
    }
    const elf = parseElfHead(head);
    if (elf === undefined || w.depth >= MAX_LIB_DEPTH) return [];
    const out: Walk[] = [];
    let interp = elf.interp;
    if (interp === undefined && elf.interpRange !== undefined)
      interp = (await read(w.hit, elf.interpRange))?.toString('latin1').replace(/\0.*$/s, '');
    const interpHit = interp !== undefined ? find(interp) : undefined;
    if (interpHit !== undefined) out.push({ hit: interpHit, role: 'interpreter', depth: MAX_LIB_DEPTH });
    if (elf.dynamic === undefined) return out;
    const dynBytes = await read(w.hit, elf.dynamic);
    if (dynBytes === undefined) return out;
    const dyn = parseElfDynamic(elf, dynBytes);
    const strtab = dyn.strtab === undefined ? undefined : await read(w.hit, dyn.strtab);
    if (strtab === undefined) return out;
    for (const name of neededNames(dyn, strtab)) {
      const lib = findLib(name);
      if (lib !== undefined) out.push({ hit: lib, role: 'library', depth: w.depth + 1 });
      else o.log.debug({ library: name, from: w.hit.path }, 'start set: needed library not in the image');
    }
    return out;
  };

  const walk = async (root: Walk): Promise<void> => {
    let level: Walk[] = plan.addFile(root.hit, root.role) ? [root] : [];
    while (level.length > 0 && !plan.full) {
      const found = await Promise.all(
        level.map((w) =>
          next(w).catch((e: unknown) => {
            o.log.debug({ err: e, path: w.hit.path }, 'start set: cannot parse a file; the walk ends there');
            return [];
          }),
        ),
      );
      level = found.flat().filter((w) => plan.addFile(w.hit, w.role));
    }
  };

  try {
    const argv = [...o.run.entrypoint, ...o.run.cmd];
    const program = argv[0] === undefined ? undefined : find(argv[0]);
    if (program === undefined) {
      o.log.debug({ argv }, 'start set: the command is not a file in the image');
    } else {
      await walk({ hit: program, role: 'entrypoint', depth: 0 });
      // libc: named by nearly every binary; a dynamic entrypoint reaching the budget first is left alone.
      const libc = findLib('libc.so.6') ?? findLib('libc.musl-x86_64.so.1');
      if (libc !== undefined && plan.files.length > 1) plan.addFile(libc, 'library');
      // Files the command names: a script for an interpreter, an entrypoint script's command.
      for (const arg of argv.slice(1, 1 + MAX_NAMED_ARGS)) {
        if (arg.startsWith('-') || plan.full) continue;
        const hit = find(arg);
        if (hit !== undefined) await walk({ hit, role: 'named', depth: 0 });
      }
    }
  } catch (e) {
    o.log.debug({ err: e }, 'start set: the walk stopped');
  }
  return { files: plan.files, chunks: plan.chunks, bytes: plan.bytes };
}
