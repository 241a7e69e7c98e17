// Test helper: writes eStargz blobs the way stargz's Go writer does (protocols.md §4), from a list of entries.
// Concatenated gzip members, ustar+PAX headers, TOC member + end-of-archive, 51/47-byte footer.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Digest } from '../../src/image/digest.js';
import { sha256 } from '../../src/image/digest.js';
import { encodeEstargzFooter } from '../../src/index/estargz-footer.js';
import { encodeTarHeader } from './estargz-writer-tar.js';

export type EstargzEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface EstargzInputEntry {
  path: string;
  type: EstargzEntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  content?: Buffer;
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Record<string, Buffer>;
}

export interface EstargzWriterOptions {
  /** Largest payload per gzip member; default 4 MiB like stargz. */
  chunkSizeBytes?: number;
  /** Paths moved to the front (with their parent dirs), followed by `.prefetch.landmark`. */
  prioritized?: string[];
  /** With no prioritized files, put `.no.prefetch.landmark` first (stargz's builder default). */
  noPrefetchLandmark?: boolean;
  /** Write the 47-byte legacy (CRFS) footer instead of the 51-byte one. */
  legacyFooter?: boolean;
  /** Files smaller than this share a gzip member, addressed by `innerOffset` (stargz main). */
  minChunkSizeBytes?: number;
  /** Rewrites the TOC JSON before it is written (to build corrupt or legacy TOCs); the returned digest follows. */
  tocTransform?: (json: Buffer) => Buffer;
}

export interface EstargzBlob {
  blob: Buffer;
  tocDigest: Digest;
  /** sha256 of the uncompressed tar stream. */
  diffId: Digest;
  tocOffset: number;
  tocJson: Buffer;
}

export const DEFAULT_MTIME = new Date('2023-06-01T12:34:56Z');
const TYPEFLAG: Record<EstargzEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};
const TOC_TYPE: Record<EstargzEntryType, string> = {
  file: 'reg',
  hardlink: 'hardlink',
  symlink: 'symlink',
  char: 'char',
  block: 'block',
  dir: 'dir',
  fifo: 'fifo',
};

function modtime(d: Date): string | undefined {
  const sec = Math.round(d.getTime() / 1000);
  return sec === 0 ? undefined : new Date(sec * 1000).toISOString().replace('.000Z', 'Z');
}

function landmark(path: string): EstargzInputEntry {
  return { path, type: 'file', mode: 0, content: Buffer.from([0x0f]), mtime: new Date(0) };
}

function strip(p: string): string {
  return p.replace(/^(\.?\/)+/, '').replace(/\/+$/, '');
}

/** Prioritized entries (with their parents) first, then the landmark, then the rest, as stargz's builder does. */
function order(entries: EstargzInputEntry[], opts: EstargzWriterOptions): EstargzInputEntry[] {
  const prio = opts.prioritized ?? [];
  if (prio.length === 0)
    return opts.noPrefetchLandmark ? [landmark('.no.prefetch.landmark'), ...entries] : entries;
  const byPath = new Map(entries.map((e) => [strip(e.path), e]));
  const first: EstargzInputEntry[] = [];
  const taken = new Set<EstargzInputEntry>();
  const take = (p: string): void => {
    const e = byPath.get(p);
    if (e && !taken.has(e)) {
      taken.add(e);
      first.push(e);
    }
  };
  for (const p of prio.map(strip)) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) take(parts.slice(0, i).join('/'));
    take(p);
  }
  return [...first, landmark('.prefetch.landmark'), ...entries.filter((e) => !taken.has(e))];
}

/** Writes an eStargz blob. Entry order is kept (after prioritisation); names are written as given. */
export function writeEstargz(entries: EstargzInputEntry[], opts: EstargzWriterOptions = {}): EstargzBlob {
  const chunkSize = opts.chunkSizeBytes ?? 4 * 1024 * 1024;
  const minChunk = opts.minChunkSizeBytes ?? 0;
  const out: Buffer[] = [];
  let outLen = 0;
  let member: Buffer[] = [];
  let memberLen = 0;
  let memberIsPack = false;
  const diff = createHash('sha256');
  const toc: Record<string, unknown>[] = [];

  const write = (b: Buffer): void => {
    member.push(b);
    memberLen += b.length;
    diff.update(b);
  };
  const closeMember = (): void => {
    if (memberLen > 0) {
      const gz = gzipSync(Buffer.concat(member));
      out.push(gz);
      outLen += gz.length;
    }
    member = [];
    memberLen = 0;
    memberIsPack = false;
  };

  for (const e of order(entries, opts)) {
    const content = e.type === 'file' ? (e.content ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const mode = e.mode ?? (e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644);
    const name = e.type === 'dir' && !e.path.endsWith('/') ? `${e.path}/` : e.path;
    const mtime = e.mtime ?? DEFAULT_MTIME;
    write(
      encodeTarHeader({
        name,
        mode,
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        size: content.length,
        mtimeSec: Math.round(mtime.getTime() / 1000),
        typeflag: TYPEFLAG[e.type],
        linkname: e.linkTarget ?? '',
        devMajor: e.devMajor ?? 0,
        devMinor: e.devMinor ?? 0,
        xattrs: e.xattrs ?? {},
      }),
    );
    // Field order and omitempty follow Go's TOCEntry; dirs carry type bits in mode as real TOCs do.
    const ent: Record<string, unknown> = { name, type: TOC_TYPE[e.type] };
    if (e.type === 'file' && content.length > 0) ent.size = content.length;
    const mt = modtime(mtime);
    if (mt !== undefined) ent.modtime = mt;
    if (e.linkTarget && (e.type === 'symlink' || e.type === 'hardlink')) ent.linkName = e.linkTarget;
    const tocMode = e.type === 'dir' ? mode | 0o40000 : mode;
    if (tocMode) ent.mode = tocMode;
    if (e.uid) ent.uid = e.uid;
    if (e.gid) ent.gid = e.gid;
    const tail: Record<string, unknown> = {};
    if ((e.type === 'char' || e.type === 'block') && e.devMajor) tail.devMajor = e.devMajor;
    if ((e.type === 'char' || e.type === 'block') && e.devMinor) tail.devMinor = e.devMinor;
    const xk = Object.keys(e.xattrs ?? {}).sort();
    if (xk.length > 0) tail.xattrs = Object.fromEntries(xk.map((k) => [k, e.xattrs![k]!.toString('base64')]));
    if (e.type === 'file') tail.digest = sha256(content);

    if (content.length === 0) {
      toc.push({ ...ent, ...tail });
      continue;
    }
    let cur: Record<string, unknown> = ent;
    let curTail = tail;
    for (let written = 0; written < content.length;) {
      const n = Math.min(chunkSize, content.length - written);
      const small = minChunk > 0 && content.length < minChunk;
      let inner = 0;
      if (small && memberIsPack && memberLen < minChunk) inner = memberLen;
      else {
        closeMember();
        memberIsPack = small;
      }
      const chunk = content.subarray(written, written + n);
      const pos: Record<string, unknown> = { offset: outLen };
      if (inner) pos.innerOffset = inner;
      write(chunk);
      const chunkFields: Record<string, unknown> = {};
      if (written) chunkFields.chunkOffset = written;
      if (content.length - written >= chunkSize) chunkFields.chunkSize = n;
      chunkFields.chunkDigest = sha256(chunk);
      toc.push({ ...cur, ...pos, ...curTail, ...chunkFields });
      written += n;
      cur = { name, type: 'chunk' };
      curTail = {};
    }
    const pad = (512 - (content.length % 512)) % 512;
    if (pad) write(Buffer.alloc(pad));
  }

  closeMember();
  const tocOffset = outLen;
  let tocJson: Buffer = Buffer.from(JSON.stringify({ version: 1, entries: toc }, null, '\t'));
  if (opts.tocTransform) tocJson = opts.tocTransform(tocJson);
  write(encodeTarHeader({ name: 'stargz.index.json', size: tocJson.length, typeflag: '0' }));
  write(tocJson);
  write(Buffer.alloc(((512 - (tocJson.length % 512)) % 512) + 1024));
  closeMember();
  out.push(encodeEstargzFooter(tocOffset, opts.legacyFooter ?? false));
  return {
    blob: Buffer.concat(out),
    tocDigest: sha256(tocJson),
    diffId: `sha256:${diff.digest('hex')}` as Digest,
    tocOffset,
    tocJson,
  };
}
