// Image config blobs fetched once per node for a while: a mount's index provider and its start set (and each
// layer's Prepare in the daemon) all need the same config, and each fetch is a registry round trip.
import type { Digest } from '../image/digest.js';
import type { ImageReference } from '../image/reference.js';
import { AbortedError } from '../errors.js';

/** How many configs are kept (a few bytes to a few KiB each; an image's config is read in bursts). */
const MAX_ENTRIES = 64;

type Fetch = (ref: ImageReference, digest: Digest) => Promise<Buffer>;

export class ConfigMemo {
  /** Keyed by repository and digest: a digest fetched from one repository is not served for another. */
  private readonly entries = new Map<string, Promise<Buffer>>();

  constructor(private readonly fetch: Fetch) {}

  /**
   * The verified config bytes. One fetch serves every caller; it runs without any one caller's signal (a
   * caller that gives up must not fail the others) and a failure is not remembered.
   */
  get(ref: ImageReference, digest: Digest, signal?: AbortSignal): Promise<Buffer> {
    const key = `${ref.registry}/${ref.repository}@${digest}`;
    let p = this.entries.get(key);
    if (p === undefined) {
      p = this.fetch(ref, digest);
      this.entries.set(key, p);
      p.catch(() => {
        if (this.entries.get(key) === p) this.entries.delete(key);
      });
      if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    }
    return signal === undefined ? p : raceSignal(p, signal);
  }
}

function raceSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(aborted(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(aborted(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function aborted(signal: AbortSignal): AbortedError {
  return new AbortedError('image config fetch aborted', { cause: signal.reason });
}
