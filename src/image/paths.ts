// Path rules for layer entries: normalise tar names, reject escapes, and name whiteouts.
import { FormatError } from '../errors.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * Normalises a tar entry name to a layer path: strips `./` and leading `/`, collapses `//` and `.`,
 * drops a trailing `/`. Names that climb out with `..` are a FormatError (never silently rewritten).
 */
export function normalizeLayerPath(name: string): string {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new FormatError(`tar entry escapes the layer root: ${JSON.stringify(name)}`);
    if (part.includes('\0')) throw new FormatError(`tar entry name contains NUL: ${JSON.stringify(name)}`);
    parts.push(part);
  }
  return parts.join('/');
}

export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
