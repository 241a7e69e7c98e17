// The narrow interface through which index builders and chunk origins read a compressed blob.
// registry/ implements it with HTTP Range requests; tests implement it over a file or a buffer.
import type { Digest } from '../image/digest.js';

export interface BlobReader {
  readonly digest: Digest;
  /** Total blob size in bytes. */
  size(signal?: AbortSignal): Promise<number>;
  /** Exactly the bytes [start, end) of the blob; fewer only if the blob ends first (then it is an error). */
  readRange(start: number, end: number, signal?: AbortSignal): Promise<Buffer>;
  /** The whole blob as a stream, for builders that must see every byte once. */
  stream(signal?: AbortSignal): Promise<AsyncIterable<Buffer>>;
  /** Another blob of the same repository (a layer's windows blob), when the reader knows where it is. */
  sibling?(digest: Digest, sizeBytes: number): BlobReader;
}
