// Content digests: the branded `Digest` type, parsing and SHA-256 helpers.
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

export type Digest = string & { readonly __brand: 'Digest' };

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const SHA512 = /^sha512:[a-f0-9]{128}$/;

export function isDigest(s: string): s is Digest {
  return SHA256.test(s) || SHA512.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) throw new InvalidArgumentError(`not a valid digest: ${JSON.stringify(s.slice(0, 80))}`);
  return s;
}

export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** The hex part of a digest, for file names. */
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export function digestAlgorithm(d: Digest): 'sha256' | 'sha512' {
  return d.startsWith('sha512:') ? 'sha512' : 'sha256';
}

/** Incremental hashing for streams. */
export class DigestHasher {
  private readonly hash;
  private readonly algorithm: 'sha256' | 'sha512';

  constructor(algorithm: 'sha256' | 'sha512' = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): this {
    this.hash.update(chunk);
    return this;
  }

  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}` as Digest;
  }
}
