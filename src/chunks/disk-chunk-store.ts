// DiskChunkStore: chunk files sharded as <dir>/ab/cdef…, written tmp-then-rename, size-bounded LRU eviction,
// rebuilt from disk by open(); a read is hashed unless the file is as this process wrote or last hashed it (always,
// with verifyReads);
// parts of a chunk are served by positioned reads; disk trouble drops writes (logged once per incident).
import { randomBytes, webcrypto } from 'node:crypto';
import { close, fstat, open as openFd, write } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { digestAlgorithm, digestHex, type Digest } from '../image/digest.js';
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../log.js';
import { emptyStats, type ChunkStore, type ChunkStoreStats } from './chunk-store.js';

export interface DiskChunkStoreOptions {
  dir: string;
  maxBytes: number;
  log: Logger;
  /** A write-trouble incident ends after this long without a failed write (default 30 s). */
  incidentQuietMs?: number;
  /**
   * Hash every chunk read from disk (default false). Chunks are verified before they are written, into a
   * private (0700) dir; a file found by open() (it may have been torn by a crash) is hashed on its first read,
   * and a file whose size or mtime changed since it was written or hashed is hashed again. Set this when the
   * disk itself is not trusted to keep bytes (no checksums, shared storage).
   */
  verifyReads?: boolean;
}

/** What the store knows of a chunk file: as written by put() or hashed by get(), or only found by open(). */
interface OnDisk {
  readonly size: number;
  readonly mtimeMs: number;
  /** Its bytes were this size and mtime when this process wrote or hashed them. */
  readonly verified: boolean;
}

/** Errors meaning "the disk cannot take writes now": drop the write and keep serving. */
const DISK_TROUBLE = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);
const TMP_MARK = '.tmp-';
const HEX_NAME = /^[a-f0-9]+$/;

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

function digestOfFile(shard: string, rest: string): Digest | undefined {
  const hex = shard + rest;
  if (!HEX_NAME.test(hex)) return undefined;
  if (hex.length === 64) return `sha256:${hex}` as Digest;
  if (hex.length === 128) return `sha512:${hex}` as Digest;
  return undefined;
}

export class DiskChunkStore implements ChunkStore {
  readonly dir: string;
  private readonly log: Logger;
  private readonly lru: LRUCache<Digest, OnDisk>;
  private readonly verifyReads: boolean;
  private readonly maxBytes: number;
  private readonly counters = emptyStats();
  /**
   * The ongoing disk-trouble incident, if any: logged when it starts and when it ends. It ends only after writes
   * have succeeded for incidentQuietMs since its last failure, so a nearly full disk that flaps between fits
   * and misfits is one incident, one line.
   */
  private incident: { code: string; lastFailureMs: number } | undefined;
  private readonly incidentQuietMs: number;
  /** Bytes of chunk files being written (reserved against maxBytes before the write starts). */
  private writingBytes = 0;
  /**
   * Shard directories this store made or found: a put skips their mkdir (a syscall and an event-loop turn per
   * chunk, ~5% of a cold sequential read's main thread); puts racing into a new shard share its one mkdir. One
   * that vanishes (ENOENT) is forgotten and made again.
   */
  private readonly shards = new Map<string, Promise<unknown>>();

  constructor(options: DiskChunkStoreOptions) {
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes <= 0) {
      throw new InvalidArgumentError(
        `disk chunk store maxBytes must be a positive integer, got ${options.maxBytes}`,
      );
    }
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.incidentQuietMs = options.incidentQuietMs ?? 30_000;
    this.log = options.log;
    this.verifyReads = options.verifyReads ?? false;
    this.lru = new LRUCache<Digest, OnDisk>({
      maxSize: options.maxBytes,
      sizeCalculation: (f) => Math.max(1, f.size),
      dispose: (_size, d, reason) => {
        if (reason !== 'evict') return;
        this.counters.evictions++;
        unlink(this.pathOf(d)).catch((e: unknown) => {
          if (errCode(e) !== 'ENOENT')
            this.log.warn({ err: e, digest: d }, 'chunk store: evicted file not removed');
        });
      },
    });
  }

  pathOf(d: Digest): string {
    const hex = digestHex(d);
    return join(this.dir, hex.slice(0, 2), hex.slice(2));
  }

  /** Creates the directory and rebuilds the LRU from the files on disk (oldest mtime evicted first). */
  async open(signal?: AbortSignal): Promise<void> {
    // Private: chunks are the contents of images that may be private. An existing dir is tightened.
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const found: { d: Digest; size: number; mtimeMs: number }[] = [];
    for (const shard of await readdir(this.dir)) {
      signal?.throwIfAborted();
      if (shard.length !== 2 || !HEX_NAME.test(shard)) continue;
      const shardDir = join(this.dir, shard);
      let names: string[];
      try {
        names = await readdir(shardDir);
      } catch {
        continue; // a stray file where a shard dir should be
      }
      this.shards.set(shardDir, Promise.resolve());
      // stat in parallel within a shard: a big cache has ~1e5 files and start-up time matters.
      const stats = await Promise.all(
        names.map(async (name) => {
          const file = join(shardDir, name);
          if (name.includes(TMP_MARK)) {
            await unlink(file).catch(() => undefined); // an interrupted write
            return undefined;
          }
          const d = digestOfFile(shard, name);
          if (d === undefined) return undefined;
          const st = await stat(file).catch(() => undefined); // may vanish while scanning
          return st?.isFile() ? { d, size: st.size, mtimeMs: st.mtimeMs } : undefined;
        }),
      );
      for (const f of stats) if (f !== undefined) found.push(f);
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found)
      if (!this.lru.has(f.d)) this.lru.set(f.d, { size: f.size, mtimeMs: f.mtimeMs, verified: false });
    this.log.info(
      { dir: this.dir, chunks: this.lru.size, bytes: this.lru.calculatedSize },
      'chunk store opened',
    );
  }

  async get(d: Digest, signal?: AbortSignal): Promise<Buffer | undefined> {
    // The LRU knows every file this store wrote or found at open(): a digest it lacks is a miss without an open()
    // that fails ENOENT (a syscall, an error object and a pool round trip per cold chunk, bench/profile-read.ts).
    if (!this.lru.has(d)) {
      this.counters.misses++;
      return undefined;
    }
    let bytes: Buffer;
    let file: { size: number; mtimeMs: number };
    try {
      const fh = await open(this.pathOf(d), 'r');
      try {
        const st = await fh.stat();
        file = { size: st.size, mtimeMs: st.mtimeMs };
        bytes = await fh.readFile(signal === undefined ? undefined : { signal });
      } finally {
        await fh.close();
      }
    } catch (e) {
      if (signal?.aborted) throw e;
      if (errCode(e) !== 'ENOENT')
        this.log.warn({ err: e, digest: d }, 'chunk store: read failed; treating as miss');
      this.lru.delete(d);
      this.counters.misses++;
      return undefined;
    }
    const known = this.lru.get(d); // refreshes recency
    const asVerified = known?.verified === true && sameFile(known, file) && bytes.length === known.size;
    if (this.verifyReads || !asVerified) {
      if (!(await this.hashes(d, bytes))) return undefined;
      if (!asVerified) this.lru.set(d, { size: bytes.length, mtimeMs: file.mtimeMs, verified: true });
    }
    this.counters.hits++;
    this.counters.hitBytes += bytes.length;
    return bytes;
  }

  /**
   * Bytes [offset, offset + length) of a chunk this store wrote or hashed, by one positioned read: no
   * whole-chunk read and no hash. Undefined when verifyReads is on, the chunk is unknown or not hashed since
   * open(), or its file is not as written (get() then hashes the whole file).
   */
  async getRange(
    d: Digest,
    offset: number,
    length: number,
    signal?: AbortSignal,
  ): Promise<Buffer | undefined> {
    signal?.throwIfAborted();
    if (this.verifyReads) return undefined;
    const known = this.lru.get(d);
    if (known?.verified !== true || offset < 0 || length < 0 || offset + length > known.size)
      return undefined;
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(d), 'r');
    } catch (e) {
      if (errCode(e) === 'ENOENT') this.lru.delete(d);
      else this.log.warn({ err: e, digest: d }, 'chunk store: read failed; treating as miss');
      return undefined;
    }
    try {
      const st = await fh.stat();
      if (!sameFile(known, { size: st.size, mtimeMs: st.mtimeMs })) return undefined;
      const out = Buffer.allocUnsafeSlow(length); // not from the shared pool: FUSE replies may hold it a while
      for (let at = 0; at < length;) {
        const { bytesRead } = await fh.read(out, at, length - at, offset + at);
        if (bytesRead === 0) return undefined; // truncated under us: get() sorts it out
        at += bytesRead;
      }
      this.counters.hits++;
      this.counters.hitBytes += length;
      return out;
    } catch (e) {
      if (signal?.aborted) throw e;
      this.log.warn({ err: e, digest: d }, 'chunk store: read failed; treating as miss');
      return undefined;
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** True when `bytes` hash to `d`; otherwise the file is removed and the read counts as a miss. */
  private async hashes(d: Digest, bytes: Buffer): Promise<boolean> {
    // WebCrypto hashes on the libuv pool: a cold sequential read hashes every chunk it takes from disk, and on the
    // event loop that was half of the read time (bench/seq-read.ts).
    const algorithm = digestAlgorithm(d) === 'sha512' ? 'SHA-512' : 'SHA-256';
    const hex = Buffer.from(await webcrypto.subtle.digest(algorithm, bytes)).toString('hex');
    const actual = `${digestAlgorithm(d)}:${hex}`;
    if (actual === d) return true;
    this.log.warn({ digest: d, actual, file: this.pathOf(d) }, 'chunk store: corrupt chunk file removed');
    this.counters.failures++;
    this.counters.misses++;
    this.lru.delete(d);
    await unlink(this.pathOf(d)).catch(() => undefined);
    return false;
  }

  has(d: Digest): boolean {
    return this.lru.has(d);
  }

  async put(d: Digest, bytes: Buffer, signal?: AbortSignal): Promise<void> {
    this.counters.puts++;
    if (this.lru.has(d)) {
      this.lru.get(d); // refresh recency
      return;
    }
    if (bytes.length > this.maxBytes) return; // could never be kept; writing it would orphan a file
    // Make room before writing, counting writes in flight: the bound holds on disk, not only in the LRU.
    while (this.lru.size > 0 && this.lru.calculatedSize + this.writingBytes + bytes.length > this.maxBytes) {
      this.lru.pop();
    }
    this.writingBytes += bytes.length;
    const final = this.pathOf(d);
    const tmp = `${final}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
    const shard = join(final, '..');
    let written: OnDisk = { size: bytes.length, mtimeMs: NaN, verified: false };
    try {
      const write = async (): Promise<void> => {
        let made = this.shards.get(shard);
        if (made === undefined) {
          made = mkdir(shard, { recursive: true, mode: 0o700 });
          this.shards.set(shard, made);
          // A failed mkdir is not remembered: the next put tries again.
          made.catch(() => this.shards.delete(shard));
        }
        await made;
        signal?.throwIfAborted();
        // What a later read compares the file with: a file changed since is re-hashed before it is served.
        written = { size: bytes.length, mtimeMs: await writeWhole(tmp, bytes), verified: true };
        await rename(tmp, final);
      };
      await write().catch(async (e: unknown) => {
        // The shard dir went away under us (removed by hand): make it again, once.
        if (errCode(e) !== 'ENOENT' || !this.shards.delete(shard)) throw e;
        await write();
      });
    } catch (e) {
      this.writingBytes -= bytes.length;
      await unlink(tmp).catch(() => undefined);
      this.counters.failures++;
      if (signal?.aborted) return;
      const code = errCode(e) ?? 'UNKNOWN';
      const now = Date.now();
      if (this.incident?.code === code) this.incident.lastFailureMs = now;
      else {
        this.incident = { code, lastFailureMs: now };
        const msg = DISK_TROUBLE.has(code)
          ? 'chunk store: disk cannot take writes; dropping chunk writes until it recovers'
          : 'chunk store: write failed; dropping chunk writes until one succeeds';
        this.log.warn({ err: e, code, dir: this.dir }, msg);
      }
      return;
    }
    this.writingBytes -= bytes.length;
    if (this.incident !== undefined && Date.now() - this.incident.lastFailureMs >= this.incidentQuietMs) {
      this.log.info({ dir: this.dir, code: this.incident.code }, 'chunk store: writes succeed again');
      this.incident = undefined;
    }
    this.lru.set(d, written);
  }

  stats(): ChunkStoreStats {
    return { ...this.counters, bytes: this.lru.calculatedSize, entries: this.lru.size };
  }

  tiers(): Readonly<Record<string, ChunkStoreStats>> {
    return { disk: this.stats() };
  }
}

/**
 * Creates `path` (0600, failing if it exists) holding `bytes`, and returns the file's mtime once written: one
 * write(2) for the whole chunk where writeFile makes one per 512 KiB, with callback fs (no FileHandle object
 * per chunk for the GC to track).
 */
function writeWhole(path: string, bytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    openFd(path, 'wx', 0o600, (err, fd) => {
      if (err !== null) return reject(err);
      const finish = (failure: NodeJS.ErrnoException | null): void =>
        fstat(fd, (statErr, st) =>
          close(fd, (closeErr) => {
            const e = failure ?? statErr ?? closeErr;
            if (e === null) resolve(st.mtimeMs);
            else reject(e);
          }),
        );
      const from = (at: number): void =>
        write(fd, bytes, at, bytes.length - at, null, (werr, n) => {
          if (werr !== null) return finish(werr);
          if (at + n < bytes.length) return from(at + n);
          finish(null);
        });
      if (bytes.length === 0) finish(null);
      else from(0);
    });
  });
}

function sameFile(a: OnDisk, b: { size: number; mtimeMs: number }): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs;
}
