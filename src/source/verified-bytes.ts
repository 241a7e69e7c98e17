// Which chunk buffers were already checked against their digest by the code that made them (the decode pool
// hashes every chunk it decodes): VerifySource need not hash those bytes a second time on the event loop.
import type { Digest } from '../image/digest.js';

const verified = new WeakMap<Uint8Array, Digest>();

/** Records that `bytes` (a buffer nobody else writes to) hashed to `digest`; returns `bytes`. */
export function markVerified<T extends Uint8Array>(bytes: T, digest: Digest): T {
  verified.set(bytes, digest);
  return bytes;
}

/** True when this very buffer object was marked as hashing to `digest`. */
export function isVerified(bytes: Uint8Array, digest: Digest): boolean {
  return verified.get(bytes) === digest;
}
