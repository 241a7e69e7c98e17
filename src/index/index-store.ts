// Local cache of serialized layer indexes, one file per layer digest; a corrupt file counts as a miss.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, toFerryError } from '../errors.js';
import { digestHex, type Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { deserializeIndex, serializeIndex } from './serialize.js';

export interface IndexStoreOptions {
  dir: string;
}

export class IndexStore {
  private readonly dir: string;

  constructor(opts: IndexStoreOptions) {
    this.dir = opts.dir;
  }

  /** The stored index for `layerDigest`, or undefined if absent or unreadable (which is then removed). */
  async get(layerDigest: Digest, signal?: AbortSignal): Promise<LayerIndex | undefined> {
    const path = this.pathFor(layerDigest);
    let buf: Buffer;
    try {
      buf = await readFile(path, signal !== undefined ? { signal } : {});
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw toFerryError(e, 'UNAVAILABLE');
    }
    try {
      return deserializeIndex(buf, layerDigest);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      await unlink(path).catch(() => undefined);
      return undefined;
    }
  }

  /** Stores `index` atomically (temp file + rename). */
  async put(index: LayerIndex, signal?: AbortSignal): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = this.pathFor(index.layerDigest);
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, serializeIndex(index), signal !== undefined ? { signal } : {});
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw toFerryError(e, 'UNAVAILABLE');
    }
  }

  private pathFor(layerDigest: Digest): string {
    return join(this.dir, `${digestHex(layerDigest)}.idx`);
  }
}

function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}
