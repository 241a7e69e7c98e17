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

const handedOff = new WeakSet<Uint8Array>();

/**
 * Marks `bytes` as a buffer its BlobReader made for this one caller and keeps no reference to (a Range answer
 * read off the socket): the caller may give it away, e.g. transfer it to a decode worker instead of copying it.
 */
export function handOff<T extends Uint8Array>(bytes: T): T {
  handedOff.add(bytes);
  return bytes;
}

/** True when `bytes` came from a BlobReader that kept no reference to it (see handOff). */
export function isHandedOff(bytes: Uint8Array): boolean {
  return handedOff.has(bytes);
}
