// The entries of a materialised layer Node cannot make itself: device nodes, FIFOs and overlay whiteouts (mknod)
// and extended attributes incl. overlay's opaque marker (setfattr, one run for the whole layer).
import { writeFile } from 'node:fs/promises';
import { FerryError } from '../errors.js';
import { run } from '../os/run.js';

export interface SpecialNode {
  type: 'char' | 'block' | 'fifo' | 'whiteout';
  devMajor: number;
  devMinor: number;
}

async function mustRun(command: string, args: readonly string[], signal?: AbortSignal): Promise<void> {
  let r;
  try {
    r = await run(command, args, { signal });
  } catch (e) {
    throw new FerryError('UNAVAILABLE', `cannot run ${command}: ${String(e)}`, { cause: e });
  }
  if (r.code === 0) return;
  // A full disk is the operator's business, not a bug: say so with the code the caller looks for.
  const full = /No space left/i.test(r.output);
  throw new FerryError(
    full ? 'RESOURCE_EXHAUSTED' : 'INTERNAL',
    `${command} exited ${r.code ?? 'on a signal'}: ${r.output}`,
  );
}

/** Makes a device node, FIFO or whiteout (char 0/0, as overlayfs expects) at `path`, mode 0600 until chmod. */
export async function makeSpecial(path: string, n: SpecialNode, signal?: AbortSignal): Promise<void> {
  const args =
    n.type === 'fifo'
      ? ['-m', '600', path, 'p']
      : n.type === 'whiteout'
        ? ['-m', '000', path, 'c', '0', '0']
        : ['-m', '600', path, n.type === 'char' ? 'c' : 'b', String(n.devMajor), String(n.devMinor)];
  await mustRun('mknod', args, signal);
}

/** A name as getfattr prints it: bytes outside printable ASCII, `\` and `=` as \ooo octal escapes. */
function escapeName(path: string): string {
  let out = '';
  for (const b of Buffer.from(path, 'utf8')) {
    if (b > 0x20 && b < 0x7f && b !== 0x5c && b !== 0x3d) out += String.fromCharCode(b);
    else out += `\\${b.toString(8).padStart(3, '0')}`;
  }
  return out;
}

/**
 * Sets every (path, name, value) in one `setfattr --restore` run from a dump file at `dumpPath` (written here,
 * left for the caller to remove with its temp dir). Symlinks' own attributes, not their targets'.
 */
export async function setXattrs(
  dumpPath: string,
  byPath: ReadonlyMap<string, ReadonlyMap<string, Buffer>>,
  signal?: AbortSignal,
): Promise<void> {
  if (byPath.size === 0) return;
  const lines: string[] = [];
  for (const [path, attrs] of byPath) {
    lines.push(`# file: ${escapeName(path)}`);
    for (const [name, value] of attrs) lines.push(`${escapeName(name)}=0s${value.toString('base64')}`);
    lines.push('');
  }
  await writeFile(dumpPath, lines.join('\n'), { mode: 0o600 });
  await mustRun('setfattr', ['-h', `--restore=${dumpPath}`], signal);
}
