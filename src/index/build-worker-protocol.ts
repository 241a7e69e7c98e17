// Messages between an index build on a worker thread (build-worker.ts) and the main thread that streams the
// layer to it (build-in-worker.ts).
import type { ErrorCode } from '../errors.js';
import type { Digest } from '../image/digest.js';

export interface BuildWorkerData {
  readonly layerDigest: Digest;
  readonly mediaType: string;
  readonly size: number;
  readonly chunkSizeBytes: number;
  readonly spanBytes: number;
  readonly diffId: Digest;
  /** Send each built chunk back (for the cache). */
  readonly wantChunks: boolean;
}

/** The blob's next bytes (transferred), or its end. */
export type ToBuildWorker = { readonly t: 'data'; readonly bytes: Uint8Array } | { readonly t: 'end' };

export type FromBuildWorker =
  /** The blob bytes consumed so far (the main thread's flow control). */
  | { readonly t: 'progress'; readonly bytes: number }
  | { readonly t: 'chunk'; readonly digest: Digest; readonly bytes: Uint8Array }
  /** Verified (layer digest and diffID) and serialized. */
  | { readonly t: 'done'; readonly serialized: Uint8Array }
  | { readonly t: 'error'; readonly code: ErrorCode; readonly message: string };
