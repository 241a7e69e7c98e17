// Local cache of serialized layer indexes, one file per (layer digest, trust-root key): an index is only ever
// found again under the root it was trusted for (see trust.ts). A corrupt file counts as a miss. Files written
// before trust roots existed (`<hex>.idx`) have no recorded root and are never read. Also remembers which index
// each lazy mount serves, so a restarted daemon adopts the mount with the very same index.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, toFerryError } from '../errors.js';
import { digestHex, isDigest, sha256, type Digest } from '../image/digest.js';
import type { LayerIndex } from '../image/layer-index.js';
import { deserializeIndex, serializeIndex } from './serialize.js';

export interface IndexStoreOptions {
  dir: string;
}

/** `built-<diffID hex>-<build tag>` (build-params.ts), `toc-<hex>`, `blob-<hex>` (trust.ts storeKey). */
const KEY = /^(built-[a-f0-9]{64,128}-[a-f0-9]{16}|(toc|blob)-[a-f0-9]{64,128})$/;

export interface MountBinding {
  readonly key: string;
  /** The served index was proven to match the blob (layer-audit.ts), or needs no proof (built). */
  readonly audited: boolean;
}

export class IndexStore {
  private readonly dir: string;

  constructor(opts: IndexStoreOptions) {
    this.dir = opts.dir;
  }

  /** The index stored for `layerDigest` under root key `key`, or undefined if absent or unreadable (then removed). */
  async get(layerDigest: Digest, key: string, signal?: AbortSignal): Promise<LayerIndex | undefined> {
    const path = this.pathFor(layerDigest, key);
    const buf = await readOrMiss(path, signal);
    if (buf === undefined) return undefined;
    try {
      return deserializeIndex(buf, layerDigest);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      await unlink(path).catch(() => undefined);
      return undefined;
    }
  }

  /** Stores `index` under root key `key` atomically (temp file + rename), readable by root only. */
  async put(index: LayerIndex, key: string, signal?: AbortSignal): Promise<void> {
    await this.write(this.pathFor(index.layerDigest, key), serializeIndex(index), signal);
  }

  /** The index the mount at `mountpoint` serves, if this node recorded one: its root key, and if it is proven. */
  async mountKey(
    mountpoint: string,
    layerDigest: Digest,
    signal?: AbortSignal,
  ): Promise<MountBinding | undefined> {
    const buf = await readOrMiss(this.bindingPath(mountpoint), signal);
    if (buf === undefined) return undefined;
    try {
      const b = JSON.parse(buf.toString('utf8')) as { layer?: unknown; key?: unknown; audited?: unknown };
      if (b.layer !== layerDigest || typeof b.key !== 'string' || !KEY.test(b.key)) return undefined;
      return { key: b.key, audited: b.audited === true };
    } catch {
      return undefined;
    }
  }

  async setMountKey(
    mountpoint: string,
    layerDigest: Digest,
    binding: MountBinding,
    signal?: AbortSignal,
  ): Promise<void> {
    const json = JSON.stringify({ layer: layerDigest, key: binding.key, audited: binding.audited });
    await this.write(this.bindingPath(mountpoint), Buffer.from(json), signal);
  }

  private async write(path: string, bytes: Buffer, signal?: AbortSignal): Promise<void> {
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, bytes, { mode: 0o600, ...(signal !== undefined ? { signal } : {}) });
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw toFerryError(e, 'UNAVAILABLE');
    }
  }

  private pathFor(layerDigest: Digest, key: string): string {
    if (!isDigest(layerDigest) || !KEY.test(key)) throw new FormatError(`bad index store key ${key}`);
    return join(this.dir, `${digestHex(layerDigest)}.${key}.idx`);
  }

  private bindingPath(mountpoint: string): string {
    return join(this.dir, 'mounts', `${digestHex(sha256(mountpoint))}.json`);
  }
}

async function readOrMiss(path: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  try {
    return await readFile(path, signal !== undefined ? { signal } : {});
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw toFerryError(e, 'UNAVAILABLE');
  }
}

function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}
