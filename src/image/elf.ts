// The little of ELF a start set needs: the program interpreter (PT_INTERP) and the shared libraries a binary
// names (DT_NEEDED), read from byte ranges of the file; and a script's `#!` line. Pure: buffers in, values out.
import { FormatError } from '../errors.js';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;

/** Hostile-input bounds: real binaries stay far below these. */
const MAX_PHDRS = 512;
const MAX_DYNAMIC_BYTES = 64 * 1024;
const MAX_STRTAB_BYTES = 1024 * 1024;
const MAX_NEEDED = 256;
const MAX_NAME_BYTES = 4096;

/** A byte range of the file. */
export interface FileRange {
  readonly offset: number;
  readonly size: number;
}

export interface ElfHead {
  readonly bits: 32 | 64;
  readonly littleEndian: boolean;
  /** The interpreter path, when PT_INTERP lies within the bytes given to parseElfHead. */
  readonly interp?: string;
  /** Where PT_INTERP lies, when present (its path may lie beyond the head). */
  readonly interpRange?: FileRange;
  /** Where the dynamic section lies; absent for a static binary. */
  readonly dynamic?: FileRange;
  /** PT_LOAD segments, to map the dynamic section's virtual addresses to file offsets. */
  readonly loads: ReadonlyArray<{ readonly vaddr: number; readonly offset: number; readonly filesz: number }>;
}

/** The bytes needed before parseElfHead can answer: the ELF header and the program header table. */
export const ELF_HEAD_BYTES = 64 * 1024;

function num(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < 0n) throw new FormatError(`ELF ${what} out of range`);
  return Number(v);
}

class Reader {
  constructor(
    private readonly b: Buffer,
    private readonly le: boolean,
    private readonly bits: 32 | 64,
  ) {}
  u16(at: number): number {
    return this.le ? this.b.readUInt16LE(at) : this.b.readUInt16BE(at);
  }
  u32(at: number): number {
    return this.le ? this.b.readUInt32LE(at) : this.b.readUInt32BE(at);
  }
  /** A word: 32 or 64 bits by class. */
  word(at: number): bigint {
    if (this.bits === 32) return BigInt(this.u32(at));
    return this.le ? this.b.readBigUInt64LE(at) : this.b.readBigUInt64BE(at);
  }
}

/** A NUL-terminated string at `at` within `b`, or undefined when it runs past the buffer or the bound. */
export function cString(b: Buffer, at: number, maxBytes = MAX_NAME_BYTES): string | undefined {
  if (at < 0 || at >= b.length) return undefined;
  const end = b.indexOf(0, at);
  if (end < 0 || end - at > maxBytes) return undefined;
  return b.toString('latin1', at, end);
}

/**
 * Parses the ELF header and program headers at the start of `head`. Undefined when the bytes are not ELF;
 * a FormatError when they are but the headers are truncated or out of bounds.
 */
export function parseElfHead(head: Buffer): ElfHead | undefined {
  if (head.length < 16 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const cls = head[4];
  const data = head[5];
  if ((cls !== 1 && cls !== 2) || (data !== 1 && data !== 2))
    throw new FormatError(`ELF class ${cls} / data ${data} unknown`);
  const bits = cls === 1 ? 32 : 64;
  const r = new Reader(head, data === 1, bits);
  const ehsize = bits === 64 ? 64 : 52;
  if (head.length < ehsize) throw new FormatError('ELF header truncated');
  const phoff = num(r.word(bits === 64 ? 0x20 : 0x1c), 'e_phoff');
  const phentsize = r.u16(bits === 64 ? 0x36 : 0x2a);
  const phnum = r.u16(bits === 64 ? 0x38 : 0x2c);
  const minEnt = bits === 64 ? 56 : 32;
  if (phnum > MAX_PHDRS) throw new FormatError(`ELF has ${phnum} program headers`);
  if (phnum > 0 && phentsize < minEnt) throw new FormatError(`ELF program header size ${phentsize}`);
  if (phoff + phnum * phentsize > head.length)
    throw new FormatError('ELF program headers lie beyond the bytes read');
  let interpRange: FileRange | undefined;
  let dynamic: FileRange | undefined;
  const loads: Array<{ vaddr: number; offset: number; filesz: number }> = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = r.u32(p);
    const offset = num(r.word(bits === 64 ? p + 8 : p + 4), 'p_offset');
    const vaddr = num(r.word(bits === 64 ? p + 16 : p + 8), 'p_vaddr');
    const filesz = num(r.word(bits === 64 ? p + 32 : p + 16), 'p_filesz');
    if (type === PT_INTERP) {
      if (filesz > MAX_NAME_BYTES) throw new FormatError(`ELF interpreter path is ${filesz} bytes`);
      interpRange = { offset, size: filesz };
    } else if (type === PT_DYNAMIC) {
      if (filesz > MAX_DYNAMIC_BYTES) throw new FormatError(`ELF dynamic section is ${filesz} bytes`);
      dynamic = { offset, size: filesz };
    } else if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
  }
  const interp =
    interpRange !== undefined && interpRange.offset + interpRange.size <= head.length
      ? cString(head, interpRange.offset, Math.min(interpRange.size, MAX_NAME_BYTES))
      : undefined;
  return {
    bits,
    littleEndian: data === 1,
    ...(interp !== undefined ? { interp } : {}),
    ...(interpRange !== undefined ? { interpRange } : {}),
    ...(dynamic !== undefined ? { dynamic } : {}),
    loads,
  };
}

/** The file offset a virtual address maps to through the PT_LOAD segments, or undefined. */
export function fileOffsetOf(head: ElfHead, vaddr: number): number | undefined {
  for (const l of head.loads)
    if (vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz) return l.offset + (vaddr - l.vaddr);
  return undefined;
}

export interface ElfDynamic {
  /** Offsets of the DT_NEEDED names in the string table. */
  readonly needed: readonly number[];
  /** Where the dynamic string table lies in the file. */
  readonly strtab?: FileRange;
}

/** Parses the dynamic section (the bytes of `head.dynamic`): DT_NEEDED offsets and the string table's place. */
export function parseElfDynamic(head: ElfHead, dyn: Buffer): ElfDynamic {
  if (dyn.length > MAX_DYNAMIC_BYTES) throw new FormatError(`ELF dynamic section is ${dyn.length} bytes`);
  const r = new Reader(dyn, head.littleEndian, head.bits);
  const w = head.bits === 64 ? 8 : 4;
  const needed: number[] = [];
  let strtab: number | undefined;
  let strsz: number | undefined;
  for (let p = 0; p + 2 * w <= dyn.length; p += 2 * w) {
    const tag = r.word(p);
    const val = r.word(p + w);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED && needed.length < MAX_NEEDED) needed.push(num(val, 'DT_NEEDED'));
    else if (tag === DT_STRTAB) strtab = num(val, 'DT_STRTAB');
    else if (tag === DT_STRSZ) strsz = num(val, 'DT_STRSZ');
  }
  if (strtab === undefined || strsz === undefined) return { needed };
  if (strsz > MAX_STRTAB_BYTES) throw new FormatError(`ELF string table is ${strsz} bytes`);
  const offset = fileOffsetOf(head, strtab);
  if (offset === undefined) throw new FormatError('ELF string table is outside every loaded segment');
  return { needed, strtab: { offset, size: strsz } };
}

/** The names DT_NEEDED points at in the string table bytes; names that do not fit are left out. */
export function neededNames(dynamic: ElfDynamic, strtab: Buffer): string[] {
  const out: string[] = [];
  for (const at of dynamic.needed) {
    const name = cString(strtab, at);
    if (name !== undefined && name !== '' && !name.includes('/')) out.push(name);
    else if (name !== undefined && name.startsWith('/')) out.push(name);
  }
  return out;
}

/** A script's `#!` line: the interpreter and its one optional argument, or undefined when there is none. */
export function parseShebang(head: Buffer): { interpreter: string; arg?: string } | undefined {
  if (head.length < 3 || head[0] !== 0x23 || head[1] !== 0x21) return undefined;
  let end = head.indexOf(0x0a, 2);
  if (end < 0) end = Math.min(head.length, 256);
  const line = head.toString('latin1', 2, Math.min(end, 2 + 256)).trim();
  const [interpreter, ...rest] = line.split(/[ \t]+/);
  if (interpreter === undefined || interpreter === '') return undefined;
  const arg = rest.join(' ');
  return { interpreter, ...(arg !== '' ? { arg } : {}) };
}
