// TraceStore: merged traces on disk under `<stateDir>/traces/`, one JSON file per image manifest digest (and
// workload key), written atomically (temp file + rename). A corrupt file is a miss, removed with one warning.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, toFerryError } from '../errors.js';
import { digestHex, sha256, type Digest } from '../image/digest.js';
import type { Logger } from '../log.js';
import { mergeTrace, type MergeOptions } from './merge.js';
import { parseMergedTrace, serializeMergedTrace, type MergedTrace, type Trace } from './trace.js';

export interface TraceStoreOptions {
  dir: string;
  merge: MergeOptions;
  log: Logger;
}

export class TraceStore {
  private readonly dir: string;
  private readonly merge: MergeOptions;
  private readonly log: Logger;
  /** Per-file chain so concurrent records of one image do not lose each other's startups. */
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(options: TraceStoreOptions) {
    this.dir = options.dir;
    this.merge = options.merge;
    this.log = options.log.child({ component: 'trace-store' });
  }

  /** The merged trace for the image (and workload), or undefined when absent or unreadable. */
  async get(
    manifestDigest: Digest,
    workloadKey?: string,
    signal?: AbortSignal,
  ): Promise<MergedTrace | undefined> {
    const path = this.pathFor(manifestDigest, workloadKey);
    let bytes: Buffer;
    try {
      bytes = await readFile(path, signal !== undefined ? { signal } : {});
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw toFerryError(e, 'UNAVAILABLE');
    }
    try {
      const trace = parseMergedTrace(bytes, path);
      if (trace.manifestDigest !== manifestDigest || trace.workloadKey !== workloadKey) {
        throw new FormatError(`${path}: trace is for ${trace.manifestDigest}, not ${manifestDigest}`);
      }
      return trace;
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      this.log.warn({ err: e, path }, 'ignoring corrupt trace file; it will be rebuilt');
      await unlink(path).catch(() => undefined);
      return undefined;
    }
  }

  /** Stores `trace` atomically, replacing what was there. */
  async put(trace: MergedTrace, signal?: AbortSignal): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 }); // traces say what an image's start reads
    const path = this.pathFor(trace.manifestDigest, trace.workloadKey);
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, serializeMergedTrace(trace), {
        mode: 0o600,
        ...(signal !== undefined ? { signal } : {}),
      });
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw toFerryError(e, 'UNAVAILABLE');
    }
  }

  /** Merges one startup into the stored trace and persists the result. */
  record(startup: Trace, signal?: AbortSignal): Promise<MergedTrace> {
    const key = this.pathFor(startup.manifestDigest, startup.workloadKey);
    const run = async (): Promise<MergedTrace> => {
      const previous = await this.get(startup.manifestDigest, startup.workloadKey, signal);
      const merged = mergeTrace(previous, startup, this.merge);
      await this.put(merged, signal);
      return merged;
    };
    const next = (this.chains.get(key) ?? Promise.resolve()).then(run, run);
    this.chains.set(key, next);
    void next
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      })
      .catch(() => undefined);
    return next;
  }

  pathFor(manifestDigest: Digest, workloadKey?: string): string {
    const workload = workloadKey === undefined ? '' : `@${digestHex(sha256(workloadKey)).slice(0, 16)}`;
    return join(this.dir, `${digestHex(manifestDigest)}${workload}.json`);
  }
}
