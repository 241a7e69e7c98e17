// ELF and `#!` parsing for start sets: real binaries of this machine (checked against readelf) and headers
// built in-test (32-bit big-endian, truncated, hostile sizes).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  ELF_HEAD_BYTES,
  neededNames,
  parseElfDynamic,
  parseElfHead,
  parseShebang,
  type ElfHead,
} from '../../src/image/elf.js';
import { isFerryError } from '../../src/errors.js';

const run = promisify(execFile);

async function readelf(args: string[], file: string): Promise<string> {
  return (await run('readelf', [...args, file])).stdout;
}

/** What parseElf* find in a whole file: interpreter and needed libraries. */
function parseWhole(bytes: Buffer): { head: ElfHead; needed: string[] } {
  const head = parseElfHead(bytes.subarray(0, ELF_HEAD_BYTES))!;
  if (head.dynamic === undefined) return { head, needed: [] };
  const d = head.dynamic;
  const dyn = parseElfDynamic(head, bytes.subarray(d.offset, d.offset + d.size));
  const s = dyn.strtab!;
  return { head, needed: neededNames(dyn, bytes.subarray(s.offset, s.offset + s.size)) };
}

describe('ELF parsing', () => {
  it('finds the interpreter and DT_NEEDED of a dynamic binary as readelf does', async () => {
    for (const file of ['/bin/ls', '/bin/dash']) {
      const { head, needed } = parseWhole(await readFile(file));
      const program = await readelf(['-l', '-W'], file);
      const interp = /Requesting program interpreter: ([^\]]+)\]/.exec(program)?.[1];
      expect(interp).toBeDefined();
      expect(head.interp).toBe(interp);
      const dynamic = await readelf(['-d', '-W'], file);
      const expected = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      expect(expected.length).toBeGreaterThan(0);
      expect(needed).toEqual(expected);
    }
  });

  it('finds no interpreter and no libraries in a static binary', async () => {
    const { head, needed } = parseWhole(await readFile('/usr/bin/busybox'));
    expect(head.bits).toBe(64);
    expect(head.interp).toBeUndefined();
    expect(needed).toEqual([]);
  });

  it('reads a 32-bit big-endian header built in-test', () => {
    const interp = Buffer.from('/lib/ld.so.1\0');
    const b = Buffer.alloc(52 + 2 * 32 + interp.length);
    b.writeUInt32BE(0x7f454c46, 0);
    b[4] = 1; // ELFCLASS32
    b[5] = 2; // ELFDATA2MSB
    b.writeUInt32BE(52, 0x1c); // e_phoff
    b.writeUInt16BE(32, 0x2a); // e_phentsize
    b.writeUInt16BE(2, 0x2c); // e_phnum
    b.writeUInt32BE(1, 52); // PT_LOAD
    b.writeUInt32BE(0, 52 + 4);
    b.writeUInt32BE(0x10000, 52 + 8);
    b.writeUInt32BE(b.length, 52 + 16);
    b.writeUInt32BE(3, 84); // PT_INTERP
    b.writeUInt32BE(116, 84 + 4);
    b.writeUInt32BE(interp.length, 84 + 16);
    interp.copy(b, 116);
    const head = parseElfHead(b)!;
    expect(head).toMatchObject({ bits: 32, littleEndian: false, interp: '/lib/ld.so.1' });
    expect(head.loads).toEqual([{ vaddr: 0x10000, offset: 0, filesz: b.length }]);
  });

  it('answers undefined for bytes that are not ELF and a FormatError for broken headers', async () => {
    expect(parseElfHead(Buffer.from('#!/bin/sh\necho hi\n'))).toBeUndefined();
    expect(parseElfHead(Buffer.alloc(0))).toBeUndefined();
    const ls = await readFile('/bin/ls');
    const broken = [
      ls.subarray(0, 100), // program headers cut off
      Buffer.concat([ls.subarray(0, 4), Buffer.from([9, 1]), ls.subarray(6, 4096)]), // unknown class
      (() => {
        const b = Buffer.from(ls.subarray(0, 4096));
        b.writeUInt16LE(60_000, 0x38); // e_phnum
        return b;
      })(),
    ];
    const hugeInterp = Buffer.from(ls.subarray(0, 4096));
    const head = parseElfHead(hugeInterp)!;
    // The PT_INTERP header's p_filesz (the program header that holds the interpreter's range).
    for (let i = 0, phoff = Number(hugeInterp.readBigUInt64LE(0x20)); i < 16; i++) {
      const p = phoff + i * 56;
      if (hugeInterp.readUInt32LE(p) === 3) hugeInterp.writeBigUInt64LE(1n << 40n, p + 32);
    }
    expect(head.interp).toBe('/lib64/ld-linux-x86-64.so.2');
    broken.push(hugeInterp);
    for (const b of broken) {
      let err: unknown;
      try {
        parseElfHead(b);
      } catch (e) {
        err = e;
      }
      expect(isFerryError(err, 'FORMAT'), String(err)).toBe(true);
    }
  });
});

describe('parseShebang', () => {
  it('reads the interpreter and its argument from the first line', () => {
    expect(parseShebang(Buffer.from('#!/bin/sh\nexec ls\n'))).toEqual({ interpreter: '/bin/sh' });
    expect(parseShebang(Buffer.from('#! /usr/bin/env  python3 -u\nprint()\n'))).toEqual({
      interpreter: '/usr/bin/env',
      arg: 'python3 -u',
    });
    expect(parseShebang(Buffer.from('echo no shebang\n'))).toBeUndefined();
    expect(parseShebang(Buffer.from('#!\n'))).toBeUndefined();
  });
});
