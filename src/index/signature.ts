// Key-based signatures of Ferry's index artifacts in the layout cosign uses (a `sha256-<hex>.sig` tag holding a
// manifest whose layers are "simple signing" payloads with the signature in an annotation), so a pipeline can
// sign the artifact with `cosign sign --key` and Ferry verifies with node:crypto against `[index] trustedKeys`.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { FerryError, FormatError } from '../errors.js';
import { digestHex, sha256, type Digest } from '../image/digest.js';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const SIGNATURE_TYPE = 'cosign container image signature';
/** A simple-signing payload is a few hundred bytes; anything near this is not one. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export interface TrustedKey {
  /** sha256 of the key's SubjectPublicKeyInfo, first 16 hex digits: stable, short, safe to log. */
  readonly id: string;
  readonly key: KeyObject;
}

/** The tag cosign stores an artifact's signatures under. */
export function signatureTag(signed: Digest): string {
  return `sha256-${digestHex(signed)}.sig`;
}

/** The payload cosign signs for `digest` in `repository` (registry/repo, no tag). */
export function simpleSigningPayload(repository: string, digest: Digest): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repository },
        image: { 'docker-manifest-digest': digest },
        type: SIGNATURE_TYPE,
      },
      optional: null,
    }),
  );
}

/** The digest a payload vouches for, or undefined when it is not a cosign simple-signing payload. */
export function signedDigest(payload: Buffer): string | undefined {
  try {
    const p = JSON.parse(payload.toString('utf8')) as {
      critical?: { type?: unknown; image?: { 'docker-manifest-digest'?: unknown } };
    };
    if (p.critical?.type !== SIGNATURE_TYPE) return undefined;
    const d = p.critical.image?.['docker-manifest-digest'];
    return typeof d === 'string' ? d : undefined;
  } catch {
    return undefined;
  }
}

export async function loadTrustedKeys(paths: readonly string[]): Promise<TrustedKey[]> {
  const out: TrustedKey[] = [];
  for (const path of paths) {
    let key: KeyObject;
    try {
      key = createPublicKey(await readFile(path));
    } catch (e) {
      throw new FerryError(
        'INVALID_ARGUMENT',
        `[index] trustedKeys: ${path} is not a readable PEM public key`,
        {
          cause: e,
        },
      );
    }
    out.push({ id: keyId(key), key });
  }
  return out;
}

export async function loadSigningKey(path: string): Promise<KeyObject> {
  try {
    return createPrivateKey(await readFile(path));
  } catch (e) {
    throw new FerryError(
      'INVALID_ARGUMENT',
      `--sign-key: ${path} is not a readable, unencrypted PEM private key`,
      {
        cause: e,
      },
    );
  }
}

export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return digestHex(sha256(pub.export({ type: 'spki', format: 'der' }))).slice(0, 16);
}

/** Base64 signature of `payload` (ECDSA/RSA over SHA-256, DER-encoded as cosign writes it; Ed25519 as is). */
export function signPayload(key: KeyObject, payload: Buffer): string {
  return sign(hashFor(key), payload, key).toString('base64');
}

/** The trusted key that made `signatureB64` over `payload`, if any. */
export function verifyPayload(
  keys: readonly TrustedKey[],
  payload: Buffer,
  signatureB64: string,
): TrustedKey | undefined {
  if (payload.length > MAX_PAYLOAD_BYTES) throw new FormatError('signature payload is too large');
  const sig = Buffer.from(signatureB64, 'base64');
  if (sig.length === 0 || sig.length > 1024) return undefined;
  return keys.find((k) => {
    try {
      return verify(hashFor(k.key), payload, k.key, sig);
    } catch {
      return false;
    }
  });
}

function hashFor(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448' ? null : 'sha256';
}
