// Streaming tar header parser that reports exact offsets in the uncompressed stream (ustar, PAX x/g,
// GNU L/K, base-256). Bytes are pushed in any piece sizes; entries and file data come out via callbacks.
import { FormatError } from '../errors.js';
import { normalizeLayerPath } from './paths.js';
import {
  BLOCK,
  Field,
  checksumMatches,
  isPosixUstar,
  isZeroBlock,
  readNumber,
  readString,
} from './tar-header.js';
import { INDEX_LIMITS } from './index-limits.js';
import { NO_PAX, applyPax, parsePax, type PaxOverrides, type PaxRecords } from './tar-pax.js';

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** normalizeLayerPath of the full name ('' for the root). */
  readonly name: string;
  readonly type: TarEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Bytes of data following the header (file content; 0 for most other types). */
  readonly size: number;
  readonly mtimeMs: number;
  /** Symlink or hardlink target as written in the archive ('' if none). */
  readonly linkName: string;
  readonly devMajor: number;
  readonly devMinor: number;
  /** xattr name → base64 value. */
  readonly xattrs: Readonly<Record<string, string>>;
  /** Offset of this entry's own header block (after any PAX / GNU long-name blocks). */
  readonly headerOffset: number;
  /** Offset of the entry's first data byte (headerOffset + 512). */
  readonly dataOffset: number;
}

export interface TarParserOptions {
  onEntry: (entry: TarEntry) => void;
  /** Data of the entry last passed to onEntry, in order; `data` is only valid during the call. */
  onData?: (entry: TarEntry, data: Uint8Array, offsetInEntry: number) => void;
  /** Names the layer in error messages. */
  label?: string;
  /** Cap on one PAX / GNU long-name body (default INDEX_LIMITS.maxPaxHeaderBytes, 1 MiB). */
  maxMetaBytes?: number;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

type State = 'header' | 'meta' | 'data' | 'pad' | 'done';

export class TarParser {
  private readonly opts: TarParserOptions;
  private readonly label: string;
  private readonly maxMetaBytes: number;
  private readonly header = new Uint8Array(BLOCK);
  private headerFill = 0;
  private state: State = 'header';
  private pos = 0;
  private remaining = 0;
  /** Padding to skip after the current body. */
  private pendingPad = 0;
  private zeroBlocks = 0;
  private metaType = '';
  private metaAt = 0;
  private metaParts: Uint8Array[] = [];
  /** Global PAX records so far, folded once: every later entry refers to this one object. */
  private globalPax: PaxOverrides = NO_PAX;
  private localPax: PaxRecords = new Map();
  private longName: string | undefined;
  private longLink: string | undefined;
  private current: TarEntry | undefined;
  private dataSeen = 0;

  constructor(opts: TarParserOptions) {
    this.opts = opts;
    this.label = opts.label ?? 'tar stream';
    this.maxMetaBytes = opts.maxMetaBytes ?? INDEX_LIMITS.maxPaxHeaderBytes;
  }

  /** Bytes consumed so far: the current offset in the tar stream. */
  get offset(): number {
    return this.pos;
  }

  /** True once the end-of-archive marker was seen. */
  get ended(): boolean {
    return this.state === 'done';
  }

  push(buf: Uint8Array): void {
    let i = 0;
    while (i < buf.length) {
      const avail = buf.length - i;
      switch (this.state) {
        case 'done':
          this.pos += avail;
          return;
        case 'header': {
          const n = Math.min(avail, BLOCK - this.headerFill);
          this.header.set(buf.subarray(i, i + n), this.headerFill);
          this.headerFill += n;
          i += n;
          this.pos += n;
          if (this.headerFill === BLOCK) {
            this.headerFill = 0;
            this.onHeader(this.pos - BLOCK);
          }
          break;
        }
        case 'meta':
        case 'data':
        case 'pad': {
          const n = Math.min(avail, this.remaining);
          const piece = buf.subarray(i, i + n);
          // A copy: the caller may reuse its buffer (the zstd decoder does), and Buffer#slice would only be a view.
          if (this.state === 'meta') this.metaParts.push(new Uint8Array(piece));
          else if (this.state === 'data' && this.current !== undefined && this.opts.onData !== undefined) {
            this.opts.onData(this.current, piece, this.dataSeen);
          }
          if (this.state === 'data') this.dataSeen += n;
          i += n;
          this.pos += n;
          this.remaining -= n;
          if (this.remaining === 0) this.afterBody();
          break;
        }
      }
    }
  }

  /** Call at the end of input: a stream cut inside a header, body or pending extension is a FormatError. */
  end(): void {
    if (this.state === 'done') return;
    const pending = this.longName !== undefined || this.longLink !== undefined || this.localPax.size > 0;
    if (this.state !== 'header' || this.headerFill !== 0 || pending) {
      throw new FormatError(`${this.label}: tar stream truncated at offset ${this.pos}`);
    }
  }

  private onHeader(at: number): void {
    const h = this.header;
    if (isZeroBlock(h)) {
      if (++this.zeroBlocks === 2) this.state = 'done';
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumMatches(h)) throw new FormatError(`${this.label}: bad tar header checksum at offset ${at}`);
    const typeflag = String.fromCharCode(h[Field.Type] ?? 0);
    let size = readNumber(h, Field.Size, 12, `size at offset ${at}`);
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size < 0 || size > this.maxMetaBytes) {
        throw new FormatError(`${this.label}: extension header of ${size} bytes at offset ${at}`);
      }
      this.metaType = typeflag;
      this.metaAt = at;
      this.metaParts = [];
      this.enterBody('meta', size);
      return;
    }
    const pax = applyPax(this.globalPax, this.localPax, at);
    if (pax.size !== undefined) size = pax.size;
    if (size < 0) throw new FormatError(`${this.label}: negative size at offset ${at}`);
    let name = this.longName ?? readString(h, Field.Name, 100);
    if (this.longName === undefined && isPosixUstar(h)) {
      const prefix = readString(h, Field.Prefix, 155);
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    if (pax.path !== undefined) name = pax.path;
    const linkName = pax.linkpath ?? this.longLink ?? readString(h, Field.LinkName, 100);
    this.localPax = new Map();
    this.longName = undefined;
    this.longLink = undefined;
    let type = TYPES[typeflag];
    if (type === 'file' && typeflag !== '7' && name.endsWith('/')) type = 'dir'; // pre-POSIX directories
    if (type === undefined) {
      this.current = undefined;
      this.enterBody('data', size);
      return;
    }
    const entry: TarEntry = {
      name: withOffset(() => normalizeLayerPath(name), at),
      type,
      mode: readNumber(h, Field.Mode, 8, `mode at offset ${at}`) & 0o7777,
      uid: pax.uid ?? nonNegative(readNumber(h, Field.Uid, 8, `uid at offset ${at}`), 'uid', at),
      gid: pax.gid ?? nonNegative(readNumber(h, Field.Gid, 8, `gid at offset ${at}`), 'gid', at),
      size,
      mtimeMs: pax.mtimeMs ?? readNumber(h, Field.Mtime, 12, `mtime at offset ${at}`) * 1000,
      linkName,
      devMajor: type === 'char' || type === 'block' ? readNumber(h, Field.DevMajor, 8, 'devmajor') : 0,
      devMinor: type === 'char' || type === 'block' ? readNumber(h, Field.DevMinor, 8, 'devminor') : 0,
      xattrs: pax.xattrs,
      headerOffset: at,
      dataOffset: at + BLOCK,
    };
    this.current = entry;
    this.dataSeen = 0;
    this.opts.onEntry(entry);
    this.enterBody('data', size);
  }

  private enterBody(state: 'meta' | 'data', size: number): void {
    this.pendingPad = (BLOCK - (size % BLOCK)) % BLOCK;
    this.state = state;
    this.remaining = size;
    if (size === 0) this.afterBody();
  }

  private afterBody(): void {
    if (this.state === 'meta') this.finishMeta();
    if (this.state === 'pad' || this.pendingPad === 0) {
      this.state = 'header';
      this.current = undefined;
      return;
    }
    this.state = 'pad';
    this.remaining = this.pendingPad;
    this.pendingPad = 0;
  }

  private finishMeta(): void {
    const body = Buffer.concat(this.metaParts);
    this.metaParts = [];
    if (this.metaType === 'x') this.localPax = parsePax(body, this.metaAt);
    else if (this.metaType === 'g') {
      this.globalPax = applyPax(this.globalPax, parsePax(body, this.metaAt), this.metaAt);
    } else {
      const nul = body.indexOf(0);
      const s = body.subarray(0, nul < 0 ? body.length : nul).toString('utf8');
      if (this.metaType === 'L') this.longName = s;
      else this.longLink = s;
    }
  }
}

function nonNegative(v: number, what: string, at: number): number {
  if (v < 0) throw new FormatError(`negative ${what} in tar header at offset ${at}`);
  return v;
}

function withOffset<T>(f: () => T, at: number): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FormatError)
      throw new FormatError(`${e.message} (tar header at offset ${at})`, { cause: e });
    throw e;
  }
}
